"""The portal pages in a real browser (Debian chromium), on a phone (390x844) and a desktop:
sign in with a token, issue two links, decode their QR codes, open an answering page three
times (opens = 3), submit a sheet through it and watch the unit's valid count move without a
reload, revoke a link; the coordinator's region view; axe-core finds no violation. Screenshots
of each page go to docs/."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import PIL.Image
import pytest
import zxingcpp

from tests.helpers import sheet, status_of
from tests.integration.embedded_server import ADMIN_TOKEN, EmbeddedServer, free_port
from tests.pages.pages_kit import GOOD_ANSWERS, PHONE, new_page, survey_campaign
from tests.pages.test_pages_answering import fill_in

pytestmark = pytest.mark.browser

CAMPAIGN = "pg-portal"
DESKTOP = {"width": 1280, "height": 900}
DOCS = Path(__file__).resolve().parents[2] / "docs"
CODES = {"Gd7kQ2xP": "PtGd0001", "Gd7kQ2xQ": "PtGd0002", "Gx1aB2cD": "PtGx0001",
         "Sh9zY8xW": "PtSh0001", "Sh9zY8xR": "PtSh0002"}
AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    port = free_port()
    srv = EmbeddedServer(tmp_path_factory.mktemp("portal") / "data", port, env={
        "SURVEY_OPENS_FLUSH_SECONDS": "1",
        "SURVEY_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}).start()
    d = survey_campaign(CAMPAIGN, CODES)
    d["title"] = "2026年网民网络安全感满意度调查"
    for unit in d["units"]:
        unit["planned_links"] = 6
    try:
        assert srv.define(d).status_code == 200
        yield srv
    finally:
        srv.stop()


def sign_in(page: Any, url: str) -> None:
    page.goto(url)
    page.fill("#token", ADMIN_TOKEN)
    page.get_by_role("button", name="登录").click()


def no_axe_violations(page: Any) -> None:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def issued_codes(page: Any) -> list[str]:
    codes = page.locator("li.link").evaluate_all("els => els.map(e => e.dataset.code)")
    return [c for c in codes if c not in CODES.values()]


@pytest.mark.parametrize(("viewport", "unit", "name"), [
    (PHONE, "gd-cyber", "phone"), (DESKTOP, "gx-net", "desktop")])
def test_unit_runs_its_links_from_the_portal(
    browser: Any, server: EmbeddedServer, viewport: dict[str, int], unit: str, name: str
) -> None:
    page = new_page(browser, viewport, bypass_csp=True)
    sign_in(page, f"{server.base}/portal/{CAMPAIGN}/unit/{unit}")
    page.get_by_role("heading", name="我的链接与二维码").wait_for()
    assert page.locator("#valid-count").text_content() == "0"

    # Issue two links through the form.
    page.fill("#issue-count", "2")
    page.fill("#issue-channel", "wechat")
    page.get_by_role("button", name="生成链接").click()
    page.wait_for_function("document.querySelectorAll('li.link').length >= 3")
    codes = issued_codes(page)
    assert len(codes) == 2

    # Their QR codes decode back to their answering-page URL.
    for code in codes:
        url = page.locator(f'li.link[data-code="{code}"] .url').text_content()
        png = httpx.get(f"{server.base}/v1/campaigns/{CAMPAIGN}/units/{unit}/links/{code}/qr.png",
                        headers=AUTH)
        found = zxingcpp.read_barcodes(PIL.Image.open(io.BytesIO(png.content)))
        assert [b.text for b in found] == [url]
        assert url.endswith(f"/s/{code}")
    page.locator(f'li.link[data-code="{codes[0]}"] img.qr').evaluate(
        "img => img.complete || new Promise(r => img.onload = r)")

    # Open one answering page three times; submit a sheet through the third.
    answering = page.context.new_page()
    for _ in range(3):
        assert answering.goto(f"{server.base}/s/{codes[0]}").status == 200
    fill_in(answering)
    with answering.expect_request("**/v1/submissions") as sent:
        answering.click("#submit")
    answering.locator("#thanks").wait_for(state="visible")
    sid = sent.value.post_data_json["submission_id"]
    assert status_of(server, CAMPAIGN, sid)["status"] == "accepted"
    answering.close()

    # No reload: the SSE stream moves the unit's figures.
    page.wait_for_function("document.getElementById('valid-count').textContent === '1'",
                           timeout=30_000)
    row = page.locator(f'li.link[data-code="{codes[0]}"]')
    assert row.locator(".opens").text_content() == "3"
    assert row.locator(".valid").text_content() == "1"
    no_axe_violations(page)

    # Revoke the second link: its later sheets are rejected revoked_link, and the reason is
    # explained on the page (without a reload).
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"撤销链接 {codes[1]}").click()
    page.locator(f'li.link.revoked[data-code="{codes[1]}"]').wait_for()
    late = sheet(CAMPAIGN, codes[1], answers=GOOD_ANSWERS)
    assert httpx.post(f"{server.base}/v1/submissions", json=late).status_code == 202
    judged = status_of(server, CAMPAIGN, late["submission_id"])
    assert judged["status"] == "rejected" and "revoked_link" in judged["reasons"]
    page.wait_for_function("document.getElementById('rejected-count').textContent === '1'",
                           timeout=30_000)
    assert page.get_by_text("链接已停用", exact=True).is_visible()
    no_axe_violations(page)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(DOCS / f"portal-unit-{name}.png"), full_page=True)
    page.context.close()


@pytest.mark.parametrize(("viewport", "name"), [(PHONE, "phone"), (DESKTOP, "desktop")])
def test_coordinator_sees_its_region_and_opens_a_unit_read_only(
    browser: Any, server: EmbeddedServer, viewport: dict[str, int], name: str
) -> None:
    page = new_page(browser, viewport, bypass_csp=True)
    sign_in(page, f"{server.base}/portal/{CAMPAIGN}/region/south")
    page.get_by_role("heading", name="各单位进度").wait_for()
    units = page.locator("tbody th a").all_text_contents()
    assert sorted(units) == ["广东省网络空间安全协会", "广西网信办"]  # not 上海某大学 (east)
    no_axe_violations(page)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(DOCS / f"portal-region-{name}.png"), full_page=True)
    page.get_by_role("link", name="广西网信办").click()
    page.get_by_role("heading", name="我的链接与二维码").wait_for()
    assert page.get_by_text("只读视图").is_visible()
    assert page.get_by_role("button", name="生成链接").count() == 0
    assert page.locator("button.danger").count() == 0
    page.context.close()


def test_sign_in_page_and_a_wrong_token(browser: Any, server: EmbeddedServer) -> None:
    page = new_page(browser, PHONE, bypass_csp=True)
    page.goto(f"{server.base}/portal/{CAMPAIGN}/unit/gd-cyber")
    page.fill("#token", "wrong")
    page.get_by_role("button", name="登录").click()
    page.get_by_role("alert").wait_for()
    assert "令牌无效" in page.get_by_role("alert").text_content()
    no_axe_violations(page)
    page.screenshot(path=str(DOCS / "portal-sign-in-phone.png"))
    page.context.close()
