"""What the page tests share: the campaigns they load, browser settings and small helpers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, NoReturn

from tests import helpers
from tests.helpers import campaign_definition

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
PHONE = {"width": 390, "height": 844}
SCREEN = {"width": 1920, "height": 1080}

SURVEY, DISPLAY, HOSTILE = "pg-survey", "pg-display", "pg-hostile"
HOSTILE_NAME = "<script>alert(1)</script>恶意单位"
HOSTILE_LABEL = '<img src=x onerror="alert(2)">您是否满意？'
HOSTILE_OPTION = '"></label><script>alert(3)</script>'


def unavailable(message: str) -> NoReturn:
    helpers.unavailable(f"{message}; run infra/pages/install.sh")


def chromium_path() -> str:
    # SURVEY_TEST_CHROMIUM points at another build (e.g. a distribution's chromium-browser).
    path = os.environ.get("SURVEY_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(path, os.X_OK):
        unavailable("chromium is not installed")
    return path


# Link codes are unique per campaign only; the page tests give each campaign its own so that
# /s/<code> is unambiguous (the choice between campaigns is tested in test_pages_link_lookup).
DISPLAY_CODES = {"Gd7kQ2xP": "DpGd0001", "Gd7kQ2xQ": "DpGd0002", "Gx1aB2cD": "DpGx0001",
                 "Sh9zY8xW": "DpSh0001", "Sh9zY8xR": "DpSh0002"}
HOSTILE_CODES = {"Gd7kQ2xP": "Hx0sT1le", "Gd7kQ2xQ": "Hx0sT2le", "Gx1aB2cD": "Hx0sT3le",
                 "Sh9zY8xW": "Hx0sT4le", "Sh9zY8xR": "Hx0sT5le"}


def survey_campaign(campaign: str, codes: dict[str, str] | None = None) -> dict[str, Any]:
    """The helpers' campaign with labelled questions, as an organiser would write them, and no
    minimum duration so a quick browser run counts as a valid sample."""
    d = campaign_definition(campaign)
    for link in d["links"]:
        link["code"] = (codes or {}).get(link["code"], link["code"])
    q = d["questionnaire"]
    q["min_seconds"] = 0
    q["questions"] = [
        {"id": "q1", "type": "scale", "min": 1, "max": 5, "required": True,
         "label": "总体而言，您对当前网络安全状况的满意程度如何？"},
        {"id": "q2", "type": "single", "required": True, "label": "您最常使用的上网设备是？",
         "options": ["智能手机", "台式电脑或笔记本", "平板电脑"]},
        {"id": "q3", "type": "multi", "max_choices": 2,
         "label": "最近一年您遇到过哪些网络安全问题？",
         "options": ["垃圾短信或骚扰电话", "网络诈骗", "个人信息泄露", "账号被盗"]},
        {"id": "q4", "type": "text", "max_length": 500,
         "label": "您对改善网络安全环境有哪些具体建议？"},
        {"id": "s1", "type": "scale", "min": 1, "max": 5, "label": "网络购物环境的安全感"},
        {"id": "s2", "type": "scale", "min": 1, "max": 5, "label": "社交平台的安全感"},
        {"id": "s3", "type": "scale", "min": 1, "max": 5, "label": "移动应用的安全感"},
        {"id": "s4", "type": "scale", "min": 1, "max": 5, "label": "公共 Wi-Fi 的安全感"},
    ]
    return d


# Answers that fit survey_campaign's questionnaire (the helpers' sheet() answers a/b/c options).
GOOD_ANSWERS: dict[str, Any] = {"q1": 4, "q2": "智能手机", "q3": ["网络诈骗"], "s1": 3, "s2": 4}


def hostile_campaign(campaign: str) -> dict[str, Any]:
    d = survey_campaign(campaign, HOSTILE_CODES)
    d["units"][0]["name"] = HOSTILE_NAME
    d["provinces"][0]["name"] = "<b>广东</b>"
    d["links"][0]["channel"] = "<i>wechat</i>"
    d["questionnaire"]["questions"][0]["label"] = HOSTILE_LABEL
    d["questionnaire"]["questions"][1]["options"] = [HOSTILE_OPTION, "b", "</script><!--"]
    return d


def new_page(browser: Any, viewport: dict[str, int], **kw: Any) -> Any:
    context = browser.new_context(viewport=viewport, locale="zh-CN",
                                  timezone_id="Asia/Shanghai", **kw)
    context.set_default_timeout(20_000)
    return context.new_page()


