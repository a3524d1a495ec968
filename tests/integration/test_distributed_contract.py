"""The public contract end to end on the distributed runtime: collector -> Kafka -> faust worker ->
ClickHouse -> API, then a replay of the raw log into a fresh database and a reconciliation."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.helpers import campaign_definition, sheet, sheets_of_every_kind
from tests.integration.distributed_stack import Stack, wait_until
from tests.integration.embedded_server import ADMIN
from tests.integration.test_embedded_contract import CLOSED, EXPECTED, LIVE, TRIAL

pytestmark = pytest.mark.integration

# Per unit (valid, rejected), per province (valid, rejected, target, rank), per work region
# (valid, rejected, target): the same figures the embedded runtime must give for this scenario.
# Sheets, not attempts (CONTRACT §6): the conflicting resend adds to no count.
UNITS = {"gd-cyber": (2, 6), "gx-net": (1, 1), "sh-uni": (0, 1)}
PROVINCES = {"45": (1, 1, 400, 1), "44": (2, 6, 1000, 2), "31": (0, 1, 200, 3)}
REGIONS = {"south": (3, 7, 1400), "east": (0, 1, 200)}


def verdict(stack: Stack, campaign: str, sid: str, timeout_s: float = 90) -> dict[str, Any]:
    """Poll (bounded) until the API has a verdict for the submission."""
    found: dict[str, Any] = {}

    def judged() -> bool:
        r = stack.status(campaign, sid)
        if r.status_code == 200 and r.json()["status"] != "received":
            found.update(r.json())
            return True
        return False

    wait_until(f"verdict for {sid}", judged, timeout_s)
    return found


def boards(stack: Stack) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    units = {u: (r["valid"], r["rejected"]) for u, r in stack.board(LIVE, "unit").items()}
    provinces = {p: (r["valid"], r["rejected"], r["target"], r["rank"])
                 for p, r in stack.board(LIVE, "province").items()}
    regions = {w: (r["valid"], r["rejected"], r["target"])
               for w, r in stack.board(LIVE, "work_region").items()}
    return units, provinces, regions


@pytest.fixture(scope="module")
def stack(new_stack: Callable[..., Stack]) -> Iterator[Stack]:
    s = new_stack().start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def scenario(stack: Stack) -> dict[str, Any]:
    """Loads three campaigns through the admin endpoint and posts one sheet of every kind."""
    r = stack.define(campaign_definition(LIVE), token=None)
    assert r.status_code == 401 and "detail" in r.json()
    r = stack.define(campaign_definition(LIVE), token="wrong")
    assert r.status_code == 401
    for campaign, phase in ((LIVE, "collection"), (TRIAL, "public_test"), (CLOSED, "none")):
        r = stack.define(campaign_definition(campaign, today_phase=phase))
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "in force"

    sent = sheets_of_every_kind(LIVE, TRIAL, CLOSED)
    a1 = sent["a1"]
    # The collector is a separate process: it takes a campaign once its own registry follower
    # has applied the definition, a moment after the PUT returned.
    for campaign in (LIVE, TRIAL, CLOSED):
        stack.post_until_taken(sheet(campaign, "NoSuch12"), 10)
    for name, body in sent.items():
        r = stack.post(body)
        assert r.status_code == 202, (name, r.text)
        assert r.json() == {"submission_id": body["submission_id"], "status": "received"}
        if name == "a1":
            # The device's first answer is judged first (they are on different partitions).
            verdict(stack, LIVE, a1["submission_id"])
    assert stack.post(a1).status_code == 202  # identical resend: 202 again, counted once
    sent["conflict"] = {**a1, "answers": {**a1["answers"], "q1": 1}}
    assert stack.post(sent["conflict"]).status_code == 202
    return sent


def test_contract_statuses_and_leaderboards(stack: Stack, scenario: dict[str, Any]) -> None:
    for name, (status, reasons) in EXPECTED.items():
        body = scenario[name]
        got = verdict(stack, body["campaign"], body["submission_id"])
        assert (got["status"], sorted(got["reasons"])) == (status, reasons), name
    a1 = verdict(stack, LIVE, scenario["a1"]["submission_id"])
    assert a1["unit"] == "gd-cyber" and a1["province"] == "44"
    assert verdict(stack, LIVE, scenario["unknown_link"]["submission_id"])["unit"] is None

    # The conflicting resend is judged after the rest: wait (bounded) until it is stored, and
    # for the exact figures.
    expected = ({u: UNITS[u] for u in UNITS}, PROVINCES, REGIONS)
    sid = scenario["a1"]["submission_id"]
    try:
        wait_until("the conflict stored, exact leaderboards",
                   lambda: verdict(stack, LIVE, sid)["conflicts"] == 1
                   and boards(stack) == expected, 90, every_s=0.25)
    except TimeoutError:
        assert boards(stack) == expected  # shows the difference
    time.sleep(1.0)  # nothing more may arrive: the identical resend stays absorbed
    assert boards(stack) == expected
    # The first verdict of an id stands; the conflicting resend is kept, never counted.
    assert verdict(stack, LIVE, scenario["conflict"]["submission_id"])["status"] == "accepted"
    units = stack.board(LIVE, "unit")
    assert units["gd-cyber"]["rank"] == 1 and units["gd-cyber"]["target"] == 500
    assert units["gd-cyber"]["progress"] == pytest.approx(2 / 500)
    trial = stack.board(TRIAL, "unit")
    assert sum(r["valid"] + r["rejected"] for r in trial.values()) == 0


def test_health_endpoints_answer(stack: Stack, scenario: dict[str, Any]) -> None:
    import httpx

    for base in (stack.collector_url, stack.api_url):
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{base}/readyz").status_code == 200
    metrics = httpx.get(f"{stack.collector_url}/metrics", headers=ADMIN).text
    assert 'survey_collector_requests_total{status="202"}' in metrics


def test_replay_into_fresh_database_reproduces_counts(
    stack: Stack, scenario: dict[str, Any]
) -> None:
    test_contract_statuses_and_leaderboards(stack, scenario)  # the live figures are final
    fresh = f"{stack.database}_replay"
    result = stack.run("replay", "--into-database", fresh)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    by_campaign = {line["campaign"]: line for line in lines if "campaign" in line}
    assert set(by_campaign) == {LIVE, TRIAL, CLOSED}
    for line in by_campaign.values():
        assert line["replay"] == line["live"] and line["units_differing"] == [], line
        assert line["tables_differing"] == [], line
    assert by_campaign[LIVE]["replay"] == {"valid": 3, "rejected": 8, "test": 0}
    summary = lines[-1]
    assert summary["database"] == fresh and summary["units_differing"] == 0
    # 16 sheets sent (with the identical resend); that resend is absorbed.
    assert summary["raw_records"] == 16 + 3 and summary["verdicts_stored"] == 15 + 3

    reconciled = stack.run("reconcile")
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    assert reconciled.stdout.strip() == ""
