"""Names, labels and options come from the organiser's file: the pages show them, never run them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import sheet, status_of
from tests.integration.embedded_server import ADMIN_TOKEN, EmbeddedServer
from tests.pages.pages_kit import (
    HOSTILE,
    HOSTILE_LABEL,
    HOSTILE_NAME,
    HOSTILE_OPTION,
    PHONE,
    SCREEN,
    new_page,
)

pytestmark = pytest.mark.browser


def watch_for_script(page: Any) -> list[str]:
    fired: list[str] = []

    def on_dialog(dialog: Any) -> None:
        fired.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda err: fired.append(f"pageerror: {err}"))
    # Markup that slipped through would also trip the pages' CSP: count that as a failure too.
    page.on("console", lambda m: fired.append(m.text) if "Security Policy" in m.text else None)
    return fired


def test_hostile_definition_is_escaped_everywhere(
    browser: Any, page_server: EmbeddedServer, artifacts: Path
) -> None:
    page = new_page(browser, PHONE)
    fired = watch_for_script(page)
    response = page.goto(f"{page_server.base}/s/Hx0sT1le")  # only the hostile campaign has it
    assert response.status == 200
    assert page.locator(".unit-name").text_content() == HOSTILE_NAME
    first = page.locator('fieldset.q[data-index="0"] .qtext')
    assert first.text_content() == HOSTILE_LABEL
    option = page.locator('fieldset.q[data-index="1"] input[type="radio"]').first
    assert option.get_attribute("value") == HOSTILE_OPTION
    assert page.locator('#r-province option[value="44"]').text_content() == "<b>广东</b>"
    assert page.locator("script:not([type]), script[src]").count() == 1  # only our survey.js
    # The hostile option is still a working answer.
    page.locator('fieldset.q[data-index="0"] label.scale-cell', has_text="5").click()
    option.check()
    page.screenshot(path=str(artifacts / "answering-phone-hostile.png"))
    with page.expect_request("**/v1/submissions") as sent:
        page.click("#submit")
    page.locator("#thanks").wait_for(state="visible")
    assert fired == []
    assert sent.value.post_data_json["answers"]["q2"] == HOSTILE_OPTION
    page.context.close()

    screen = new_page(browser, SCREEN)
    fired = watch_for_script(screen)
    r = httpx.post(f"{page_server.base}/v1/submissions", json=sheet(
        HOSTILE, "Hx0sT1le", answers={"q1": 4, "q2": "b"}), timeout=10)
    assert r.status_code == 202
    status_of(page_server, HOSTILE, r.json()["submission_id"])
    screen.goto(f"{page_server.base}/display/{HOSTILE}")
    row = screen.locator('#units li[data-id="gd-cyber"] .name')
    row.wait_for()
    assert row.text_content() == HOSTILE_NAME
    assert screen.locator('#provinces li[data-id="44"] .name').text_content() == "<b>广东</b>"
    screen.wait_for_timeout(300)
    assert fired == []
    screen.context.close()


def test_hostile_qr_sheet_is_escaped(
    browser: Any, page_server: EmbeddedServer, tmp_path: Path
) -> None:
    from commands.cli import main

    out = tmp_path / "qr"
    assert main(["links", "qr", "--campaign", HOSTILE, "--url", page_server.base,
                 "--token", ADMIN_TOKEN, "--unit", "gd-cyber", "--out", str(out),
                 "--base-url", page_server.base]) == 0
    page = new_page(browser, {"width": 1240, "height": 1754})
    fired = watch_for_script(page)
    page.goto((out / "gd-cyber" / "sheet.html").as_uri())
    assert page.locator("h1").text_content() == HOSTILE_NAME
    assert "<i>wechat</i>" in page.locator(".card").first.inner_text()
    assert fired == []
    page.context.close()
