"""The answering page behind a link, driven in a real chromium against a real `serve`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import status_of
from tests.integration.embedded_server import EmbeddedServer
from tests.pages.pages_kit import PHONE, SURVEY, new_page

pytestmark = pytest.mark.browser

ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


def fill_in(page: Any) -> None:
    q = 'fieldset.q[data-index="{}"]'.format
    page.locator(q(0)).locator("label.scale-cell", has_text="4").click()
    page.locator(q(1)).get_by_text("智能手机", exact=True).click()
    page.locator(q(2)).get_by_text("网络诈骗", exact=True).click()
    page.locator(q(2)).get_by_text("个人信息泄露", exact=True).click()
    page.locator(q(3)).locator("textarea").fill("建议加强对诈骗电话的治理。")
    for index, value in ((4, "3"), (5, "5"), (6, "2")):
        page.locator(q(index)).locator("label.scale-cell", has_text=value).click()
    page.locator("#opinion").fill("希望多开展网络安全宣传活动。")
    page.select_option("#r-province", "44")
    page.fill("#r-city", "广州")
    page.select_option("#r-age", "25-34")


def test_filled_page_is_submitted_and_accepted(
    browser: Any, page_server: EmbeddedServer, artifacts: Path
) -> None:
    page = new_page(browser, PHONE)
    response = page.goto(f"{page_server.base}/s/Gd7kQ2xP")
    assert response.status == 200
    assert page.locator(".unit-name").text_content() == "广东省网络空间安全协会"
    assert page.locator("fieldset.q[data-index]").count() == 8
    page.screenshot(path=str(artifacts / "answering-phone-top.png"))

    fill_in(page)
    # max_choices=2: a third box cannot be ticked once two are.
    assert page.locator('fieldset.q[data-index="2"] input[value="账号被盗"]').is_disabled()
    page.screenshot(path=str(artifacts / "answering-phone-filled.png"), full_page=True)

    with page.expect_request("**/v1/submissions") as sent:
        page.click("#submit")
    thanks = page.locator("#thanks")
    thanks.wait_for(state="visible")
    assert "感谢您的参与" in thanks.inner_text()
    page.screenshot(path=str(artifacts / "answering-phone-thanks.png"))

    body = json.loads(sent.value.post_data)
    assert body["campaign"] == SURVEY and body["link_code"] == "Gd7kQ2xP"
    assert body["questionnaire_version"] == "2023.1"
    assert body["answers"] == {
        "q1": 4, "q2": "智能手机", "q3": ["网络诈骗", "个人信息泄露"],
        "q4": "建议加强对诈骗电话的治理。", "s1": 3, "s2": 5, "s3": 2,
    }
    assert body["respondent"] == {"province": "44", "city": "广州", "age_group": "25-34"}
    assert body["opinion"] == "希望多开展网络安全宣传活动。"
    assert ISO_WITH_OFFSET.match(body["started_at"]) and ISO_WITH_OFFSET.match(body["submitted_at"])
    assert body["device_id"] == page.evaluate("localStorage.getItem('survey-ingest.device_id')")
    assert page.locator("#thanks-id").text_content() == body["submission_id"]

    verdict = status_of(page_server, SURVEY, body["submission_id"])
    assert verdict["status"] == "accepted", verdict
    assert verdict["unit"] == "gd-cyber"
    page.context.close()


def test_device_id_persists_and_submission_id_is_per_load(
    browser: Any, page_server: EmbeddedServer
) -> None:
    page = new_page(browser, PHONE)
    ids = []
    for _ in range(2):
        page.goto(f"{page_server.base}/s/Gx1aB2cD")
        page.locator('fieldset.q[data-index="0"] label.scale-cell', has_text="2").click()
        page.locator('fieldset.q[data-index="1"]').get_by_text("平板电脑", exact=True).click()
        with page.expect_request("**/v1/submissions") as sent:
            page.click("#submit")
        page.locator("#thanks").wait_for(state="visible")
        ids.append(json.loads(sent.value.post_data))
    assert ids[0]["device_id"] == ids[1]["device_id"]
    assert ids[0]["submission_id"] != ids[1]["submission_id"]
    page.context.close()


def test_required_questions_block_the_submit(
    browser: Any, page_server: EmbeddedServer, artifacts: Path
) -> None:
    page = new_page(browser, PHONE)
    page.goto(f"{page_server.base}/s/Gd7kQ2xP")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if r.method == "POST" else None)
    page.click("#submit")
    errors = page.locator(".q.invalid .field-error")
    assert errors.count() == 2  # q1 and q2 are required
    assert "必答" in errors.first.inner_text()
    assert page.locator("#form-error").is_visible()
    assert requests == []
    from playwright.sync_api import expect

    expect(page.locator(".q.invalid").first).to_be_in_viewport()  # scrolled to the first gap
    page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts / "answering-phone-required.png"))
    page.context.close()


def test_retries_keep_the_same_body_until_accepted(
    browser: Any, page_server: EmbeddedServer, artifacts: Path
) -> None:
    page = new_page(browser, PHONE)
    page.goto(f"{page_server.base}/s/Gd7kQ2xP")
    fill_in(page)
    bodies: list[str] = []

    def flaky(route: Any) -> None:
        bodies.append(route.request.post_data)
        if len(bodies) == 1:
            route.fulfill(status=503, headers={"retry-after": "1"}, content_type="application/json",
                          body='{"detail": "log unavailable, nothing stored"}')
        elif len(bodies) == 2:
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/v1/submissions", flaky)
    page.click("#submit")
    note = page.locator("#retry-note")
    note.wait_for(state="visible")
    assert "正在重试" in note.inner_text()
    page.screenshot(path=str(artifacts / "answering-phone-retrying.png"))
    page.locator("#thanks").wait_for(state="visible", timeout=30_000)
    assert len(bodies) == 3 and len(set(bodies)) == 1  # byte-identical resends
    sid = json.loads(bodies[0])["submission_id"]
    assert status_of(page_server, SURVEY, sid)["status"] in ("accepted", "rejected")
    page.context.close()


def test_a_refusal_shows_the_servers_detail(browser: Any, page_server: EmbeddedServer) -> None:
    page = new_page(browser, PHONE)
    page.goto(f"{page_server.base}/s/Gd7kQ2xP")
    fill_in(page)
    page.route("**/v1/submissions", lambda route: route.fulfill(
        status=422, content_type="application/json",
        body=json.dumps({"detail": "envelope invalid", "errors": [
            {"loc": ["respondent", "city"], "type": "string_too_long", "msg": "太长了 <b>x</b>"}]}),
    ))
    page.click("#submit")
    error = page.locator("#form-error")
    error.wait_for(state="visible")
    text = error.inner_text()
    assert "422" in text and "envelope invalid" in text and "太长了 <b>x</b>" in text
    assert page.locator("#thanks").is_hidden()
    # Nothing was stored, so the form is open again for a correction.
    assert page.locator("#submit").is_enabled() and page.locator("#r-city").is_enabled()
    page.context.close()


@pytest.mark.parametrize(("code", "status", "title"), [
    ("NoSuch12", 404, "链接无效"),
    ("Sh9zY8xR", 410, "链接已停用"),
    ("bad%20code", 404, "链接无效"),
    ("a/b/c", 404, "链接无效"),
])
def test_unknown_and_revoked_links_get_a_page(
    browser: Any, page_server: EmbeddedServer, artifacts: Path, code: str, status: int, title: str
) -> None:
    page = new_page(browser, PHONE)
    response = page.goto(f"{page_server.base}/s/{code}")
    assert response.status == status
    assert response.headers["content-type"].startswith("text/html")
    assert page.locator("h1").inner_text() == title
    assert "Traceback" not in page.content()
    if code == "Sh9zY8xR":
        page.screenshot(path=str(artifacts / "answering-phone-410.png"))
    page.context.close()
