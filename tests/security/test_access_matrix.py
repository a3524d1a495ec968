"""The access matrix over real HTTP, in both runtimes: every route of the table × every role ×
in and out of scope × no token, each with its exact status (CONTRACT §7).

Generated from tests/security/access_table.py (the declaration test ties that table to the code):
a route whose rule changes, or a role that gets through where the table says no, fails here."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from schemas.access import Role
from tests.helpers import campaign_definition
from tests.integration.distributed_stack import wait_until
from tests.integration.embedded_server import ADMIN, ADMIN_TOKEN
from tests.security.access_table import TABLE, Expect
from tests.security.support import Runtime

# Real servers on loopback: sockets allowed (tests/conftest.py).
pytestmark = pytest.mark.integration

PRIVATE, PUBLIC_C = "acl-priv", "acl-pub"
PAST = "2026-01-01T00:00:00+00:00"


@dataclass(frozen=True)
class Who:
    name: str
    role: Role | None
    campaign: str = ""  # "*" for all

    def bound_to(self, campaign: str) -> bool:
        return self.campaign in ("*", campaign)


CALLERS = (
    Who("nobody", None),
    Who("unit", Role.unit, PRIVATE),
    Who("coordinator", Role.coordinator, PRIVATE),
    Who("analyst", Role.analyst, PRIVATE),
    Who("admin", Role.admin, PRIVATE),
    Who("env-admin", Role.admin, "*"),
    Who("monitor", Role.monitor, "*"),
    Who("analyst-elsewhere", Role.analyst, PUBLIC_C),
)
GRANTS: dict[str, dict[str, Any]] = {
    "unit": {"role": "unit", "campaign": PRIVATE, "unit": "gd-cyber"},
    "coordinator": {"role": "coordinator", "campaign": PRIVATE, "work_region": "south"},
    "analyst": {"role": "analyst", "campaign": PRIVATE},
    "admin": {"role": "admin", "campaign": PRIVATE},
    "monitor": {"role": "monitor", "campaign": "*"},
    "analyst-elsewhere": {"role": "analyst", "campaign": PUBLIC_C},
}


def private_definition() -> dict[str, Any]:
    d = campaign_definition(PRIVATE)
    d["visibility"] = {"leaderboard": "private"}
    return d


@dataclass
class Target:
    """A running API (embedded serve or distributed api) with the matrix's tokens."""

    runtime: str
    base: str
    tokens: dict[str, str]
    spare_token_id: str
    logs: Callable[[], str] = lambda: ""

    def headers(self, who: Who) -> dict[str, str]:
        if who.role is None:
            return {}
        if who.name == "env-admin":
            return ADMIN
        return {"authorization": f"Bearer {self.tokens[who.name]}"}


def issue(base: str, grant: dict[str, Any], label: str) -> dict[str, Any]:
    r = httpx.post(f"{base}/v1/admin/tokens", json={**grant, "label": label}, headers=ADMIN,
                   timeout=30)
    assert r.status_code == 201, r.text
    return dict(r.json())


def prepare(runtime: str, base: str, logs: Callable[[], str]) -> Target:
    for d in (private_definition(), campaign_definition(PUBLIC_C)):
        r = httpx.put(f"{base}/v1/admin/campaigns/{d['campaign']}", json=d, headers=ADMIN,
                      timeout=60)
        assert r.status_code == 200, r.text
    tokens = {name: issue(base, grant, f"matrix {name}")["token"]
              for name, grant in GRANTS.items()}
    spare = issue(base, {"role": "analyst", "campaign": PRIVATE}, "to be revoked")["token_id"]
    return Target(runtime, base, tokens, spare, logs)


@pytest.fixture(scope="module")
def target(runtime: Runtime) -> Target:
    """Each runtime (tests/security/conftest.py) with the matrix's campaigns and tokens; the
    failed-auth limit there is out of the matrix's way."""
    return prepare(runtime.name, runtime.api, runtime.logs)


# -- what each route is called with, and what it answers when the call is allowed --------------


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: dict[str, str] | None = None
    json: Any = None
    ok: int = 200
    stream: bool = False


def calls_for(key: tuple[str, str], t: Target) -> dict[tuple[str, str], Call]:
    """(campaign, variant) -> the call; variant "in" or "out" of a scoped caller's scope."""
    method, path = key
    out: dict[tuple[str, str], Call] = {}
    campaigns = [PRIVATE, PUBLIC_C] if TABLE[key].crowd else [PRIVATE]
    for campaign in campaigns:
        p = (path.replace("{campaign}", campaign).replace("{submission_id}", "no-such-sheet")
             .replace("{question_id}", "q1").replace("{token_id}", t.spare_token_id)
             .replace("{name}", "survey.css").replace("{link_code:path}", "Gd7kQ2xP"))
        call = Call(method, p)
        if path.endswith("/counts") or path.endswith("/findings"):
            out[(campaign, "in")] = Call(method, p, {"unit": "gd-cyber"})
            out[(campaign, "out")] = Call(method, p, {"unit": "sh-uni"})
            continue
        if "{unit}" in path or path.endswith("/links/{code}"):
            # A unit's links: gd-cyber (south) is in the unit's and coordinator's scope, sh-uni
            # (east) out of it. Revoked here: gd-cyber's second link (Gd7kQ2xP stays live).
            own, other = ("gd-cyber", "Gd7kQ2xQ"), ("sh-uni", "Sh9zY8xW")
            for variant, (unit, code) in (("in", own), ("out", other)):
                q = (p.replace("{unit}", unit).replace("{code}", code)
                     .replace("{kind}", "png"))
                if method == "POST":
                    call = Call(method, q, json={"count": 1, "channel": "matrix"}, ok=201)
                else:
                    call = Call(method, q)
                out[(campaign, variant)] = call
            continue
        if path.endswith("/export") or path.endswith("/export/codebook"):
            # A past as-of: an export "now" waits up to a second for the store's clock to pass
            # its cut, 28 s over the matrix's two runtimes; who may export is the same.
            for variant, region in (("in", "south"), ("out", "east")):
                out[(campaign, variant)] = Call(method, p, {"work_region": region,
                                                            "as_of": PAST})
            continue
        if path.endswith("/distribution"):
            out[(campaign, "in")] = Call(method, p, {"work_region": "south"})
            out[(campaign, "out")] = Call(method, p, {"work_region": "east"})
            continue
        if path == "/v1/submissions":
            # The collector (embedded) or the API's documented stand-in (distributed): both 422.
            call = Call(method, p, json={}, ok=422)
        elif path.endswith("/open"):
            call = Call(method, p.replace("{link_code}", "Gd7kQ2xP"), ok=204)
        elif path.endswith("/submissions/{submission_id}"):
            call = Call(method, p, ok=404)
        elif path.endswith("/live"):
            call = Call(method, p, stream=True)
        elif method == "PUT":
            call = Call(method, p, json=private_definition())
        elif path.endswith("/reviews") and method == "POST":
            call = Call(method, p, json={"action": "invalid", "reason": "matrix",
                                         "reviewer": "matrix", "submission_ids": ["nope"]})
        elif path.endswith("/median"):
            call = Call(method, p, ok=409)  # no accepted sheet yet: allowed, and says so
        elif path == "/v1/admin/tokens" and method == "POST":
            call = Call(method, p, json={"role": "analyst", "campaign": PRIVATE,
                                         "label": "matrix issue"}, ok=201)
        elif path.startswith("/portal/") and method == "POST":
            call = Call(method, p, ok=403)  # a form without its CSRF token
        elif path.startswith("/portal/"):
            call = Call(method, p.replace("{unit}", "gd-cyber").replace("{region}", "south"))
        out[(campaign, "-")] = call
    return out


def expected(expect: Expect, who: Who, campaign: str, variant: str, call: Call,
             has_campaign: bool) -> int:
    if expect.public or (expect.crowd and campaign == PUBLIC_C):
        return call.ok
    if who.role is None:
        return 401
    if who.role not in expect.roles:
        return 403
    if has_campaign and not who.bound_to(campaign):
        return 403
    if expect.scoped and variant == "out" and who.role in (Role.unit, Role.coordinator):
        return 403
    return call.ok


def send(t: Target, call: Call, headers: dict[str, str]) -> httpx.Response:
    url = t.base + call.path
    if call.stream:
        with httpx.stream(call.method, url, params=call.params, headers=headers,
                          timeout=30) as r:
            if r.status_code != 200:
                r.read()  # a refusal is a short JSON body; a 200 is the endless event stream
            return r
    return httpx.request(call.method, url, params=call.params, json=call.json,
                         headers=headers, timeout=60, follow_redirects=False)


def test_every_route_every_role_every_scope(target: Target) -> None:
    failures = []
    checked = 0
    for key, expect in TABLE.items():
        has_campaign = "{campaign}" in key[1]
        for ((campaign, variant), call), who in itertools.product(
                calls_for(key, target).items(), CALLERS):
            want = expected(expect, who, campaign, variant, call, has_campaign)
            r = send(target, call, target.headers(who))
            checked += 1
            if r.status_code != want:
                failures.append(f"{who.name:18} {call.method} {call.path} {call.params or ''}: "
                                f"{r.status_code} (want {want}) {r.text[:120]}")
                continue
            if r.status_code in (401, 403) and not call.path.startswith(("/display", "/portal")):
                assert r.json()["detail"], r.text
                assert (r.headers.get("www-authenticate") == "Bearer") == (r.status_code == 401)
    assert not failures, f"{len(failures)} of {checked}:\n" + "\n".join(failures)
    assert checked > 250


def test_scoped_answers_name_their_scope(target: Target) -> None:
    base = f"{target.base}/v1/campaigns/{PRIVATE}"
    unit = {"authorization": f"Bearer {target.tokens['unit']}"}
    coordinator = {"authorization": f"Bearer {target.tokens['coordinator']}"}
    analyst = {"authorization": f"Bearer {target.tokens['analyst']}"}
    assert httpx.get(f"{base}/counts", headers=unit).json()["scope"] == {"unit": "gd-cyber"}
    assert httpx.get(f"{base}/counts", headers=coordinator).json()["scope"] == {
        "work_region": "south"}
    assert httpx.get(f"{base}/counts", headers=analyst).json()["scope"] == {}
    # A province outside the region, a link of another unit: refused, not an empty answer.
    assert httpx.get(f"{base}/counts", params={"province": "31"},
                     headers=coordinator).status_code == 403
    assert httpx.get(f"{base}/counts", params={"link": "Gx1aB2cD"}, headers=unit).status_code == 403
    assert httpx.get(f"{base}/counts", params={"link": "Gd7kQ2xQ"}, headers=unit).status_code == 200
    eligible = httpx.get(f"{base}/reports/eligible", headers=coordinator).json()
    assert eligible["scope"] == {"work_region": "south"}


def test_campaign_view_public_or_full(target: Target) -> None:
    url = f"{target.base}/v1/campaigns/{PRIVATE}"
    public = httpx.get(url).json()
    assert public["view"] == "public"
    assert "links" not in public and "questionnaire" not in public
    assert {u["id"]: u["target"] for u in public["units"]}["gd-cyber"] == 500
    unit = httpx.get(url, headers={"authorization": f"Bearer {target.tokens['unit']}"}).json()
    assert unit["view"] == "public"
    full = httpx.get(url, headers={"authorization": f"Bearer {target.tokens['analyst']}"}).json()
    assert full["view"] == "full" and full["links"]


@pytest.mark.parametrize("authorization", [
    "Bearer " + "x" * 8000,  # oversized
    "Bearer sik_" + "\u00e9" * 20,  # not ASCII (latin-1 on the wire)
    "Bearer a b c", "Basic dXNlcjpwYXNz", "Bearer", "bearer", "sik_nothing",
    "Bearer sik_" + "A" * 43,  # well formed, unknown
])
def test_malformed_or_unknown_credentials_are_401(
    target: Target, authorization: str
) -> None:
    r = httpx.get(f"{target.base}/v1/campaigns/{PRIVATE}/counts",
                  headers=[("authorization", authorization.encode("latin-1"))], timeout=10)
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer" and r.json()["detail"]


def test_expired_and_revoked_tokens_are_401(target: Target) -> None:
    issued = issue(target.base, {"role": "analyst", "campaign": PRIVATE,
                                 "expires_at": "2099-01-01T00:00:00+00:00"}, "short-lived")
    url = f"{target.base}/v1/campaigns/{PRIVATE}/counts"
    auth = {"authorization": f"Bearer {issued['token']}"}
    assert httpx.get(url, headers=auth).status_code == 200
    r = httpx.delete(f"{target.base}/v1/admin/tokens/{issued['token_id']}", headers=ADMIN)
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    wait_until("revocation in force", lambda: httpx.get(url, headers=auth).status_code == 401, 5)
    listed = httpx.get(f"{target.base}/v1/admin/tokens", params={"campaign": PRIVATE},
                       headers=ADMIN).json()["tokens"]
    assert all("token" not in t and "sha256" not in str(t) for t in listed)
    assert {t["token_id"]: t["status"] for t in listed}[issued["token_id"]] == "revoked"
    past = httpx.post(f"{target.base}/v1/admin/tokens", headers=ADMIN, json={
        "role": "analyst", "campaign": PRIVATE, "label": "x",
        "expires_at": "2001-01-01T00:00:00+00:00"})
    assert past.status_code == 422


def test_admin_writes_are_audited_with_who_and_when(target: Target) -> None:
    audit = httpx.get(f"{target.base}/v1/admin/audit", headers=ADMIN).json()["audit"]
    actions = {e["action"] for e in audit}
    assert {"campaign.defined", "token.issued", "token.revoked", "review.decided",
            "campaign.frozen"} <= actions, actions
    bound_admin = next(e for e in audit if e["by"]["label"] == "matrix admin")
    assert bound_admin["by"]["token_id"].startswith("tok_") and bound_admin["at"]
    assert all("sik_" not in str(e) for e in audit)


def test_no_token_or_hash_in_the_logs(target: Target) -> None:
    """Catches a credential logged anywhere in the run (a debug line, an exception message
    with the header, a request log): neither a token nor its sha256 (or a prefix) appears."""
    from core.access import token_sha256

    logs = target.logs()
    assert logs, "no log to search"
    for secret in [*target.tokens.values(), ADMIN_TOKEN]:
        for needle in (secret, token_sha256(secret), token_sha256(secret)[:16]):
            assert needle not in logs
