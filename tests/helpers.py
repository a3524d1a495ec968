"""Shared by the HTTP-level tests: campaign definitions and answer sheets, polling a verdict,
running a server process (start until ready, stop), and what a missing service means."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any, NoReturn, Protocol

import httpx
import pytest


def campaign_definition(campaign: str, *, today_phase: str = "collection") -> dict[str, Any]:
    """A small campaign whose phase covering today is `today_phase` ("collection", "public_test"
    or "none" for a campaign whose window is closed)."""
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
    day = dt.timedelta(days=1)
    if today_phase == "collection":
        phases = [
            {
                "name": "public_test",
                "start": str(today - 5 * day),
                "end": str(today - 4 * day),
                "counts": False,
            },
            {
                "name": "collection",
                "start": str(today - 3 * day),
                "end": str(today + 7 * day),
                "counts": True,
            },
        ]
    elif today_phase == "public_test":
        phases = [
            {
                "name": "public_test",
                "start": str(today - day),
                "end": str(today + day),
                "counts": False,
            },
            {
                "name": "collection",
                "start": str(today + 2 * day),
                "end": str(today + 9 * day),
                "counts": True,
            },
        ]
    else:
        phases = [
            {
                "name": "collection",
                "start": str(today - 30 * day),
                "end": str(today - 20 * day),
                "counts": True,
            },
        ]
    return {
        "campaign": campaign,
        "timezone": "Asia/Shanghai",
        "phases": phases,
        "work_regions": [{"id": "south", "name": "华南"}, {"id": "east", "name": "华东"}],
        "provinces": [
            {
                "id": "44",
                "name": "广东",
                "work_region": "south",
                "internet_users": 100000,
                "target_rate": 0.01,
            },
            {
                "id": "45",
                "name": "广西",
                "work_region": "south",
                "internet_users": 40000,
                "target_rate": 0.01,
            },
            {
                "id": "31",
                "name": "上海",
                "work_region": "east",
                "internet_users": 20000,
                "target_rate": 0.01,
            },
        ],
        "units": [
            {
                "id": "gd-cyber",
                "name": "广东省网络空间安全协会",
                "province": "44",
                "planned_samples": 500,
            },
            {"id": "gx-net", "name": "广西网信办", "province": "45", "planned_samples": 300},
            {
                "id": "sh-uni",
                "name": "上海某大学",
                "kind": "supporting",
                "province": "31",
                "planned_samples": 100,
            },
        ],
        "links": [
            {"code": "Gd7kQ2xP", "unit": "gd-cyber", "channel": "wechat"},
            {"code": "Gd7kQ2xQ", "unit": "gd-cyber", "channel": "weibo"},
            {"code": "Gx1aB2cD", "unit": "gx-net", "channel": "wechat"},
            {"code": "Sh9zY8xW", "unit": "sh-uni", "channel": "web"},
            {"code": "Sh9zY8xR", "unit": "sh-uni", "channel": "poster", "revoked": True},
        ],
        "questionnaire": {
            "version": "2023.1",
            "min_seconds": 60,
            "questions": [
                {"id": "q1", "type": "scale", "min": 1, "max": 5, "required": True},
                {"id": "q2", "type": "single", "options": ["a", "b", "c"], "required": True},
                {"id": "q3", "type": "multi", "options": ["a", "b", "c", "d"], "max_choices": 3},
                {"id": "q4", "type": "text", "max_length": 2000},
                {"id": "s1", "type": "scale", "min": 1, "max": 5},
                {"id": "s2", "type": "scale", "min": 1, "max": 5},
                {"id": "s3", "type": "scale", "min": 1, "max": 5},
                {"id": "s4", "type": "scale", "min": 1, "max": 5},
            ],
        },
    }


def sheet(campaign: str, link_code: str = "Gd7kQ2xP", **overrides: Any) -> dict[str, Any]:
    now = dt.datetime.now(dt.timezone(dt.timedelta(hours=8)))
    body: dict[str, Any] = {
        "submission_id": str(uuid.uuid4()),
        "campaign": campaign,
        "link_code": link_code,
        "questionnaire_version": "2023.1",
        "started_at": (now - dt.timedelta(minutes=8)).isoformat(),
        "submitted_at": now.isoformat(),
        "respondent": {"province": "44", "city": "4401", "age_group": "25-34"},
        "device_id": str(uuid.uuid4()),
        "answers": {"q1": 4, "q2": "b", "q3": ["a", "c"], "q4": "free text", "s1": 3, "s2": 4},
        "opinion": "希望加强个人信息保护，联系我 13812345678",
    }
    body.update(overrides)
    return body


def sheets_of_every_kind(live: str, trial: str, closed: str) -> dict[str, dict[str, Any]]:
    """One sheet of every judging outcome, by name (a reason, or a1..a3 for valid ones), for
    the campaigns `campaign_definition` makes with today in collection, public_test and none."""
    a1 = sheet(live)
    return {
        "a1": a1,
        "a2": sheet(live, "Gd7kQ2xQ"),
        "a3": sheet(live, "Gx1aB2cD"),
        "unknown_link": sheet(live, "NoSuch12"),
        "revoked_link": sheet(live, "Sh9zY8xR"),
        "unknown_questionnaire_version": sheet(live, "Gx1aB2cD", questionnaire_version="9.9"),
        "missing_required": sheet(live, answers={"q1": 4}),
        "invalid_answer": sheet(live, answers={"q1": 9, "q2": "b"}),
        "too_fast": sheet(live, started_at=a1["submitted_at"]),
        "straight_lining": sheet(
            live, answers={"q1": 3, "q2": "a", "s1": 3, "s2": 3, "s3": 3, "s4": 3}
        ),
        "duplicate_respondent": sheet(live, device_id=a1["device_id"]),
        "several": sheet(live, started_at=a1["submitted_at"], answers={"q1": 2}),
        "test_phase": sheet(trial),
        "outside_window": sheet(closed),
    }


class HasBase(Protocol):
    base: str  # http://host:port of a server with the public API


def status_of(
    server: HasBase, campaign: str, sid: str, timeout: float = 30, fail_on_5xx: bool = False
) -> dict[str, Any]:
    """Polls the status API (bounded) until the submission has a verdict."""
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(f"{server.base}/v1/campaigns/{campaign}/submissions/{sid}", timeout=10)
        assert not (fail_on_5xx and r.status_code >= 500), r.text
        if r.status_code == 200 and r.json()["status"] != "received":
            return dict(r.json())
        if time.monotonic() > deadline:
            raise AssertionError(f"no verdict for {sid}: {r.status_code} {r.text}")
        time.sleep(0.1)


def wait_ready(
    proc: subprocess.Popen[bytes],
    url: str,
    name: str,
    timeout: float,
    log_tail: Callable[[], str],
    stop: Callable[[], None],
    every: float = 0.1,
) -> None:
    """Until GET `url` answers 200 (bounded); a process that exits or never gets ready is
    stopped with `stop` and reported with the tail of its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}: {log_tail()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(every)
    stop()
    raise TimeoutError(f"{name} not ready within {timeout}s: {log_tail()}")


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds; nothing for a process already gone."""
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def unavailable(message: str) -> NoReturn:
    """A service or tool a test needs is missing: skipped on a workstation, failed under CI
    (where every service is installed and started, so a skip would hide a failure)."""
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
