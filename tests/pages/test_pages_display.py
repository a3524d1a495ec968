"""The live display screen follows the SSE stream: numbers change without a reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import sheet, status_of
from tests.integration.embedded_server import EmbeddedServer
from tests.pages.pages_kit import (
    DISPLAY,
    DISPLAY_CODES,
    GOOD_ANSWERS,
    SCREEN,
    new_page,
)

pytestmark = pytest.mark.browser


def valid_sheet(code: str, **overrides: Any) -> dict[str, Any]:
    return sheet(DISPLAY, DISPLAY_CODES[code], **{"answers": GOOD_ANSWERS, **overrides})


def post_sheets(server: EmbeddedServer, bodies: list[dict[str, Any]]) -> None:
    for body in bodies:
        r = httpx.post(f"{server.base}/v1/submissions", json=body, timeout=10)
        assert r.status_code == 202, r.text
    for body in bodies:
        status_of(server, DISPLAY, body["submission_id"])


def test_display_numbers_follow_new_sheets_without_reload(
    browser: Any, page_server: EmbeddedServer, artifacts: Path
) -> None:
    from playwright.sync_api import expect  # importable once the browser fixture has run

    page = new_page(browser, SCREEN)
    response = page.goto(f"{page_server.base}/display/{DISPLAY}")
    assert response.status == 200
    expect(page.locator("#k-valid")).to_have_text("0")
    assert page.locator("#conn-text").inner_text() == "实时连接"
    assert page.locator("#units li.unit-row").count() == 3
    assert page.locator("#regions li.region-row").count() == 2
    page.evaluate("window.__sameDocument = 'yes'")  # gone if the page reloads

    post_sheets(page_server, [
        valid_sheet("Gd7kQ2xP"), valid_sheet("Gd7kQ2xQ"), valid_sheet("Gx1aB2cD"),
        valid_sheet("Gx1aB2cD", answers={**GOOD_ANSWERS, "q1": 9}),  # invalid answer: rejected
    ])
    expect(page.locator("#k-valid")).to_have_text("3", timeout=20_000)
    expect(page.locator("#k-rejected")).to_have_text("1", timeout=20_000)
    assert page.evaluate("window.__sameDocument") == "yes"
    first = page.locator("#units li.unit-row").first
    assert first.locator(".name").inner_text() == "广东省网络空间安全协会"
    assert first.locator(".num").inner_text() == "2"
    south = page.locator('#regions li[data-id="south"]')
    assert "有效 3 / 目标 1,400" in south.inner_text()
    guangxi = page.locator('#provinces li[data-id="45"]')
    assert guangxi.locator(".pct").inner_text() == "0.25%"  # 1 of 400
    assert page.locator("#k-rate").inner_text() == "3"
    assert "新增有效样本" in page.locator("#k-rate-label").inner_text()
    assert page.locator("#k-target").inner_text() == "1,600"

    post_sheets(page_server, [valid_sheet("Sh9zY8xW")])
    expect(page.locator("#k-valid")).to_have_text("4", timeout=20_000)
    assert page.evaluate("window.__sameDocument") == "yes"
    page.wait_for_timeout(900)  # let the count-up animation and bar transitions settle
    page.screenshot(path=str(artifacts / "display-1920x1080.png"))
    page.context.close()


def test_display_of_an_unknown_campaign_is_404(
    browser: Any, page_server: EmbeddedServer
) -> None:
    page = new_page(browser, SCREEN)
    response = page.goto(f"{page_server.base}/display/no-such-campaign")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "活动不存在"
    page.context.close()
