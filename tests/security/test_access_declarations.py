"""Every route declares who may call it, the declaration is the table's, the README's route ×
role table says the same, the OpenAPI document names the bearer scheme on every protected
route, and no api/ module imports api/app.py."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Route

from api.app import build_api
from api.deps import all_routes, rule_of
from api.services import Services
from core.access import Rule
from core.registry import Registry
from schemas.access import Role
from tests.security.access_table import DOCS, TABLE, Expect

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ("public", "unit", "coordinator", "analyst", "admin", "monitor")


def app_of(admin_token: str = "") -> FastAPI:
    async def define(_: Any) -> None:
        return None

    services = Services(registry=Registry(), store=None,  # type: ignore[arg-type]
                        admin_token=admin_token, define_campaign=define, ready=lambda: True)
    return build_api(services)


def declared(app: FastAPI) -> dict[tuple[str, str], Rule | None]:
    out: dict[tuple[str, str], Rule | None] = {}
    for route in all_routes(app.routes):
        if isinstance(route, APIRoute):
            for method in route.methods:
                out[(method, route.path)] = rule_of(route.dependant)
    return out


def undeclared_routes(app: FastAPI) -> list[str]:
    """The walk that fails on any route without a declaration (or with the default)."""
    bad = []
    for route in all_routes(app.routes):
        if isinstance(route, APIRoute):
            rule = rule_of(route.dependant)
            if rule is None or not rule.declared:
                bad.append(f"{sorted(route.methods)} {route.path}")
        elif isinstance(route, Route) and route.path not in DOCS:
            bad.append(f"{route.path} (not an APIRoute: the Gate cannot see it)")
    return bad


def as_expect(rule: Rule) -> Expect:
    return Expect(roles=rule.roles if not rule.public else frozenset(), public=rule.public,
                  crowd=rule.crowd, scoped=rule.scoped)


def test_every_route_declares_a_rule() -> None:
    assert undeclared_routes(app_of()) == []


def test_the_walk_catches_a_route_without_a_declaration() -> None:
    """Catches a deny-by-default that is only a convention: a route added with no rule is
    reported by the walk, and at run time it answers only an admin."""
    app = app_of("adm")

    @app.get("/v1/forgotten")
    async def forgotten() -> dict[str, str]:
        return {"open": "yes"}

    assert undeclared_routes(app) == ["['GET'] /v1/forgotten"]
    client = TestClient(app)
    refused = client.get("/v1/forgotten")
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert client.get("/v1/forgotten", headers={"authorization": "Bearer adm"}).json() == {
        "open": "yes"}


def test_declarations_are_the_table() -> None:
    got = {key: as_expect(rule) for key, rule in declared(app_of()).items() if rule is not None}
    assert set(got) == set(TABLE), (set(got) ^ set(TABLE))
    for key, expect in TABLE.items():
        assert got[key] == expect, key


def _cell(expect: Expect, column: str) -> str:
    if column == "public":
        return "✓" if expect.public else ("✓ (unless private)" if expect.crowd else "–")
    if expect.public:
        return "✓"
    role = Role(column)
    if role not in expect.roles:
        return "public only" if expect.crowd else "–"
    if expect.scoped and role in (Role.unit, Role.coordinator):
        return "own unit" if role is Role.unit else "own region"
    return "✓"


def test_readme_route_table_is_true() -> None:
    """Catches a README that drifted from the code: every line of its access table is
    regenerated from the table the declarations are tested against."""
    text = (ROOT / "README.md").read_text()
    text = text.split("<!-- access-table -->", 1)[1].split("<!-- /access-table -->", 1)[0]
    rows: dict[tuple[str, str], list[str]] = {}
    for line in text.splitlines():
        m = re.match(r"^\| `(GET|POST|PUT|DELETE) ([^`]+)` \|(.*)\|\s*$", line)
        if m:
            rows[(m.group(1), m.group(2))] = [c.strip() for c in m.group(3).split("|")]
    assert set(rows) == set(TABLE), set(rows) ^ set(TABLE)
    for key, expect in TABLE.items():
        assert rows[key] == [_cell(expect, c) for c in COLUMNS], key


def test_openapi_declares_bearer_on_every_protected_route() -> None:
    doc = TestClient(app_of()).get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for (method, path), expect in TABLE.items():
        op = doc["paths"].get(path.replace(":path", ""), {}).get(method.lower())
        if op is None:
            continue  # pages are left out of the document
        security = op.get("security")
        if expect.public:
            assert not security, (method, path)
        else:
            assert security == [{"HTTPBearer": []}], (method, path)


@pytest.mark.parametrize("module", sorted((ROOT / "api").glob("*.py")), ids=lambda p: p.name)
def test_no_api_module_imports_the_app(module: Path) -> None:
    tree = ast.parse(module.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.module != "api.app", module
        elif isinstance(node, ast.Import):
            assert all(a.name != "api.app" for a in node.names), module
