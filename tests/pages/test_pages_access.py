"""Signing in with a token on /portal, the session cookie's flags, signing out, and the display
page of a private campaign with and without a session; on a phone and a desktop, each page
free of serious or critical axe-core findings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import build_api
from api.services import Services
from core.registry import Registry
from tests.integration.embedded_server import ADMIN, EmbeddedServer
from tests.pages.pages_kit import PHONE, SCREEN, new_page, survey_campaign

pytestmark = pytest.mark.browser

PRIVATE = "pg-private"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    srv = EmbeddedServer(tmp_path_factory.mktemp("access-pages") / "data").start()
    try:
        d = survey_campaign(PRIVATE, {"Gd7kQ2xP": "PvGd0001", "Gd7kQ2xQ": "PvGd0002",
                                      "Gx1aB2cD": "PvGx0001", "Sh9zY8xW": "PvSh0001",
                                      "Sh9zY8xR": "PvSh0002"})
        d["visibility"] = {"leaderboard": "private"}
        assert srv.define(d).status_code == 200
        yield srv
    finally:
        srv.stop()


def grant(server: EmbeddedServer, **body: str) -> str:
    r = httpx.post(f"{server.base}/v1/admin/tokens", headers=ADMIN,
                   json={"campaign": PRIVATE, **body}, timeout=30)
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def no_serious_axe_findings(page: Any) -> None:
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    bad = [(v["id"], v["impact"], v["help"]) for v in violations
           if v["impact"] in ("serious", "critical")]
    assert not bad, bad


def sign_in(page: Any, base: str, token: str, next_path: str = "/portal") -> Any:
    response = page.goto(f"{base}/portal?next={next_path}")
    assert response.status == 200
    page.fill("#token", token)
    with page.expect_navigation():
        page.click("button[type=submit]")
    return page


@pytest.mark.parametrize("viewport", [PHONE, SCREEN], ids=["phone", "desktop"])
def test_sign_in_cookie_flags_and_sign_out(
    browser: Any, server: EmbeddedServer, artifacts: Path, viewport: dict[str, int]
) -> None:
    token = grant(server, role="unit", unit="gd-cyber", label="广东省网络空间安全协会 联络员")
    page = new_page(browser, viewport)
    page.goto(f"{server.base}/portal")
    no_serious_axe_findings(page)
    sign_in(page, server.base, token)
    assert "/portal" in page.url
    assert "广东省网络空间安全协会 联络员" in page.locator("#who").inner_text()
    no_serious_axe_findings(page)
    page.screenshot(path=str(artifacts / f"signin-{viewport['width']}.png"))
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["si_session"]
    assert session["httpOnly"] is True and session["sameSite"] == "Strict"
    assert session["secure"] is False  # plain http here; see the https test below
    assert token not in session["value"]  # the cookie names the token by id, signed
    # The session reads what the token may read (and names its scope).
    counts = page.request.get(f"{server.base}/v1/campaigns/{PRIVATE}/counts")
    assert counts.status == 200 and counts.json()["scope"] == {"unit": "gd-cyber"}
    with page.expect_navigation():
        page.click("button[type=submit]")  # 退出登录
    assert "si_session" not in {c["name"] for c in page.context.cookies()}
    assert page.locator("#token").count() == 1
    assert page.request.get(f"{server.base}/v1/campaigns/{PRIVATE}/counts").status == 401
    page.context.close()


def test_wrong_token_is_refused_on_the_page(browser: Any, server: EmbeddedServer) -> None:
    page = new_page(browser, PHONE)
    page.goto(f"{server.base}/portal")
    page.fill("#token", "sik_" + "x" * 43)
    with page.expect_navigation() as nav:
        page.click("button[type=submit]")
    assert nav.value.status == 401
    assert "令牌无效" in page.locator(".form-error").inner_text()
    assert "si_session" not in {c["name"] for c in page.context.cookies()}
    no_serious_axe_findings(page)
    page.context.close()


@pytest.mark.parametrize("viewport", [PHONE, SCREEN], ids=["phone", "desktop"])
def test_private_display_needs_a_session(
    browser: Any, server: EmbeddedServer, artifacts: Path, viewport: dict[str, int]
) -> None:
    from playwright.sync_api import expect

    page = new_page(browser, viewport)
    refused = page.goto(f"{server.base}/display/{PRIVATE}")
    assert refused.status == 401
    assert page.locator(f'a[href="/portal?next=/display/{PRIVATE}"]').count() == 1
    no_serious_axe_findings(page)
    # The API behind the display is closed too.
    assert page.request.get(f"{server.base}/v1/campaigns/{PRIVATE}/leaderboard").status == 401

    sign_in(page, server.base, grant(server, role="analyst", label="大屏 运维"),
            f"/display/{PRIVATE}")
    assert page.url.endswith(f"/display/{PRIVATE}")
    # The page's own requests (SSE /live, /pacing) ride on the same session cookie.
    expect(page.locator("#conn-text")).to_have_text("实时连接")
    expect(page.locator("#k-valid")).to_have_text("0")
    expect(page.locator("#units li.unit-row")).to_have_count(3)
    page.screenshot(path=str(artifacts / f"display-private-{viewport['width']}.png"))
    page.context.close()


def test_revoked_token_ends_its_session(browser: Any, server: EmbeddedServer) -> None:
    r = httpx.post(f"{server.base}/v1/admin/tokens", headers=ADMIN, timeout=30,
                   json={"campaign": PRIVATE, "role": "analyst", "label": "to revoke"})
    issued = r.json()
    page = new_page(browser, PHONE)
    sign_in(page, server.base, issued["token"])
    url = f"{server.base}/v1/campaigns/{PRIVATE}/leaderboard"
    assert page.request.get(url).status == 200
    httpx.delete(f"{server.base}/v1/admin/tokens/{issued['token_id']}", headers=ADMIN)
    assert page.request.get(url).status == 401
    page.context.close()


def test_forms_without_their_csrf_token_change_nothing(server: EmbeddedServer) -> None:
    """Catches a sign-in form open to cross-site posts (login CSRF): the CSRF cookie and field
    must match; a missing or foreign one is a 403 and no session cookie."""
    token = grant(server, role="analyst", label="csrf")
    with httpx.Client(base_url=server.base) as client:
        client.get("/portal")
        assert client.cookies.get("si_csrf")
        for csrf in ("", "not-the-cookie"):
            r = client.post("/portal/session", data={"token": token, "csrf": csrf})
            assert r.status_code == 403 and "si_session" not in r.headers.get("set-cookie", "")
        r = client.post("/portal/session", data={"token": token,
                                                 "csrf": client.cookies["si_csrf"]})
        assert r.status_code == 303 and r.headers["location"] == "/portal"
        # A write that rides on the session needs the CSRF header as well.
        refused = client.delete("/v1/admin/tokens/tok_0000000000000000")
        assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]


def test_session_cookie_is_secure_behind_https() -> None:
    from fastapi.testclient import TestClient

    async def define(_: Any) -> None:
        return None

    services = Services(registry=Registry(), store=None,  # type: ignore[arg-type]
                        admin_token="adm", define_campaign=define, ready=lambda: True,
                        secure_cookies=True)
    client = TestClient(build_api(services), base_url="https://survey.example.cn")
    client.get("/portal")
    r = client.post("/portal/session", follow_redirects=False,
                    data={"token": "adm", "csrf": client.cookies["si_csrf"]})
    assert r.status_code == 303
    cookie = r.headers["set-cookie"].lower()
    assert "si_session=" in cookie and "secure" in cookie and "httponly" in cookie
    assert "samesite=strict" in cookie
