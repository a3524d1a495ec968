"""Issue #10 on the distributed runtime: review decisions through the `api` role (registry topic),
the worker's sink covering verdicts stored after a decision, and a final ranking that a replay of
the raw log into a fresh database reproduces."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.helpers import campaign_definition, sheet
from tests.integration.distributed_stack import ADMIN_TOKEN, Stack, wait_until
from tests.integration.test_distributed_contract import verdict

pytestmark = pytest.mark.integration

CAMPAIGN = "c-rid"
AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture(scope="module")
def stack(new_stack: Callable[..., Stack]) -> Iterator[Stack]:
    s = new_stack().start()
    yield s
    s.stop()


def valid(stack: Stack, unit: str) -> int:
    return int(stack.board(CAMPAIGN, "unit")[unit]["valid"])


def review(stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(f"{stack.api_url}/v1/admin/campaigns/{CAMPAIGN}/reviews", json=body,
                   headers=AUTH, timeout=60)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_decisions_follow_through_the_distributed_runtime_and_its_replay(stack: Stack) -> None:
    assert stack.define(campaign_definition(CAMPAIGN)).status_code == 200
    sheets = [sheet(CAMPAIGN) for _ in range(3)] + [sheet(CAMPAIGN, "Gx1aB2cD")]
    stack.post_until_taken(sheets[0], 60)
    for body in sheets[1:]:
        assert stack.post(body).status_code == 202
    for body in sheets:
        assert verdict(stack, CAMPAIGN, body["submission_id"])["status"] == "accepted"
    # The leaderboard is a snapshot taken once a tick: a stored sheet shows within two ticks.
    wait_until("the board shows the three", lambda: valid(stack, "gd-cyber") == 3, 10)

    # By id, through the API's publisher: counts follow, the same decision twice changes nothing.
    body = {"action": "invalid", "reason": "同一设备批量提交", "reviewer": "组委会",
            "submission_ids": [sheets[0]["submission_id"]], "decision_id": "d-1"}
    assert review(stack, body)["covered"] == 1
    assert valid(stack, "gd-cyber") == 2
    assert review(stack, body)["new"] is False
    assert valid(stack, "gd-cyber") == 2

    # A link window reaching into the future: a sheet judged after the decision is covered by
    # the worker's sink (the API applied it to what was stored then).
    now = dt.datetime.now(SHANGHAI)
    window = review(stack, {
        "action": "invalid", "reason": "刷量时段", "reviewer": "组委会",
        "link_code": "Gx1aB2cD", "window_start": (now - dt.timedelta(hours=1)).isoformat(),
        "window_end": (now + dt.timedelta(hours=1)).isoformat(), "decision_id": "d-2",
    })
    assert window["covered"] == 1
    assert valid(stack, "gx-net") == 0
    late = sheet(CAMPAIGN, "Gx1aB2cD")
    assert stack.post(late).status_code == 202
    verdict(stack, CAMPAIGN, late["submission_id"])
    # The sink applies known decisions right after it stores a batch: a read in between may
    # still see the judged status for a moment.
    reviewed: dict[str, Any] = {}

    def covered() -> bool:
        reviewed.update(stack.status(CAMPAIGN, late["submission_id"]).json())
        return reviewed["status"] == "rejected"

    wait_until("the late sheet is covered by d-2", covered, 30)
    assert reviewed["review"] == {"decision_id": "d-2", "judged_status": "accepted"}

    def gx_counts() -> tuple[int, int]:
        gx = stack.board(CAMPAIGN, "unit")["gx-net"]
        return int(gx["valid"]), int(gx["rejected"])

    wait_until("the board shows the late sheet", lambda: gx_counts() == (0, 2), 10)

    trail = httpx.get(f"{stack.api_url}/v1/admin/campaigns/{CAMPAIGN}/reviews", headers=AUTH,
                      timeout=30).json()
    assert [(d["decision_id"], d["covered"]) for d in trail["decisions"]] == [
        ("d-1", 1), ("d-2", 2)
    ]

    median = httpx.post(f"{stack.api_url}/v1/admin/campaigns/{CAMPAIGN}/median", headers=AUTH,
                        timeout=60)
    assert median.status_code == 200, median.text
    assert median.json()["samples"] == 5  # accepted as judged; decisions do not re-judge

    frozen = httpx.post(f"{stack.api_url}/v1/admin/campaigns/{CAMPAIGN}/freeze", headers=AUTH,
                        timeout=60).json()
    assert frozen["content"]["totals"] == {"valid": 2, "rejected": 3, "test": 0}
    assert frozen["content"]["review_decisions"] == ["d-1", "d-2"]

    fresh = f"{stack.database}_replay"
    replayed = stack.run("replay", "--into-database", fresh, timeout_s=300)
    assert replayed.returncode == 0, replayed.stderr[-3000:]
    lines = [json.loads(line) for line in replayed.stdout.splitlines() if line.startswith("{")]
    mine = next(line for line in lines if line.get("campaign") == CAMPAIGN)
    assert mine["replay"] == mine["live"] and mine["units_differing"] == []
    fresh_url = stack.clickhouse_url.rsplit("/", 1)[0] + f"/{fresh}"
    again = stack.run("campaign", "freeze", CAMPAIGN, "--clickhouse", "--clickhouse-url",
                      fresh_url, timeout_s=120)
    assert again.returncode == 0, again.stderr[-3000:]
    snapshot = json.loads(again.stdout)
    assert snapshot["content"] == frozen["content"]
    assert snapshot["sha256"] == frozen["sha256"]
