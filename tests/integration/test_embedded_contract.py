"""The whole public contract through a real `survey-ingest serve` process (embedded runtime)."""

from __future__ import annotations

import concurrent.futures
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import campaign_definition, sheet, sheets_of_every_kind, status_of
from tests.integration.embedded_server import ADMIN, EmbeddedServer

# Real servers on loopback: sockets allowed (tests/conftest.py).
pytestmark = pytest.mark.integration

LIVE, TRIAL, CLOSED = "c-live", "c-trial", "c-closed"


def post(server: EmbeddedServer, body: Any, **kw: Any) -> httpx.Response:
    return httpx.post(f"{server.base}/v1/submissions", json=body, timeout=10, **kw)


def board(server: EmbeddedServer, level: str, campaign: str = LIVE) -> dict[str, dict[str, Any]]:
    r = httpx.get(
        f"{server.base}/v1/campaigns/{campaign}/leaderboard", params={"level": level}, timeout=10
    )
    assert r.status_code == 200, r.text
    payload = r.json()
    assert payload["campaign"] == campaign and payload["level"] == level and payload["as_of"]
    return {row["id"]: row for row in payload["rows"]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    srv = EmbeddedServer(tmp_path_factory.mktemp("embedded") / "data").start()
    try:
        yield srv
    finally:
        srv.kill()


@pytest.fixture(scope="module")
def scenario(server: EmbeddedServer) -> dict[str, Any]:
    """Loads three campaigns and posts one sheet of every kind; returns what was sent."""
    r = httpx.put(
        f"{server.base}/v1/admin/campaigns/{LIVE}", json=campaign_definition(LIVE), timeout=10
    )
    assert r.status_code == 401 and "detail" in r.json()
    for campaign, phase in ((LIVE, "collection"), (TRIAL, "public_test"), (CLOSED, "none")):
        r = server.define(campaign_definition(campaign, today_phase=phase))
        assert r.status_code == 200, r.text

    sent = sheets_of_every_kind(LIVE, TRIAL, CLOSED)
    a1 = sent["a1"]
    for name, body in sent.items():
        r = post(server, body)
        assert r.status_code == 202, (name, r.text)
        assert r.json() == {"submission_id": body["submission_id"], "status": "received"}
        if name == "a1":
            status_of(
                server, LIVE, a1["submission_id"]
            )  # the device's first answer is judged first
    # Identical resend: answered 202 again, counted once.
    r = post(server, a1)
    assert r.status_code == 202
    # Conflicting resend: same id, different content.
    sent["conflict"] = {**a1, "answers": {**a1["answers"], "q1": 1}}
    assert post(server, sent["conflict"]).status_code == 202
    return sent


EXPECTED = {
    "a1": ("accepted", []),
    "a2": ("accepted", []),
    "a3": ("accepted", []),
    "unknown_link": ("rejected", ["unknown_link"]),
    "revoked_link": ("rejected", ["revoked_link"]),
    "unknown_questionnaire_version": ("rejected", ["unknown_questionnaire_version"]),
    "missing_required": ("rejected", ["missing_required"]),
    "invalid_answer": ("rejected", ["invalid_answer"]),
    "too_fast": ("rejected", ["too_fast"]),
    "straight_lining": ("rejected", ["straight_lining"]),
    "duplicate_respondent": ("rejected", ["duplicate_respondent"]),
    "several": ("rejected", ["missing_required", "too_fast"]),
    "test_phase": ("test", []),
    "outside_window": ("rejected", ["outside_window"]),
}


def check_everything(server: EmbeddedServer, sent: dict[str, Any]) -> None:
    for name, (status, reasons) in EXPECTED.items():
        body = sent[name]
        campaign = body["campaign"]
        got = status_of(server, campaign, body["submission_id"])
        assert (got["status"], sorted(got["reasons"])) == (status, reasons), name
    a1 = status_of(server, LIVE, sent["a1"]["submission_id"])
    assert a1["unit"] == "gd-cyber" and a1["province"] == "44"
    assert status_of(server, LIVE, sent["unknown_link"]["submission_id"])["unit"] is None

    units = board(server, "unit")
    assert [
        (u, units[u]["valid"], units[u]["rejected"]) for u in ("gd-cyber", "gx-net", "sh-uni")
    ] == [("gd-cyber", 2, 6), ("gx-net", 1, 1), ("sh-uni", 0, 1)]  # the conflict is no sheet
    assert status_of(server, LIVE, sent["a1"]["submission_id"])["conflicts"] == 1
    assert units["gd-cyber"]["rank"] == 1 and units["gd-cyber"]["target"] == 500
    assert units["gd-cyber"]["progress"] == pytest.approx(2 / 500)
    provinces = board(server, "province")
    assert {
        p: (r["valid"], r["rejected"], r["target"], r["rank"]) for p, r in provinces.items()
    } == {"45": (1, 1, 400, 1), "44": (2, 6, 1000, 2), "31": (0, 1, 200, 3)}
    regions = board(server, "work_region")
    assert {w: (r["valid"], r["rejected"], r["target"]) for w, r in regions.items()} == {
        "south": (3, 7, 1400),
        "east": (0, 1, 200),
    }
    # Test-phase answers are stored and judged but never counted.
    trial = board(server, "unit", TRIAL)
    assert sum(r["valid"] + r["rejected"] for r in trial.values()) == 0


def test_contract_statuses_and_leaderboards(
    server: EmbeddedServer, scenario: dict[str, Any]
) -> None:
    check_everything(server, scenario)


def test_edge_errors_are_json_with_detail(server: EmbeddedServer, scenario: dict[str, Any]) -> None:
    url = f"{server.base}/v1/submissions"
    cases = [
        (httpx.post(url, content=b"{not json", headers={"content-type": "application/json"}), 400),
        (httpx.post(url, content=b"\xff\xfe", headers={"content-type": "application/json"}), 400),
        (
            httpx.post(
                url, content=json.dumps(sheet(LIVE)), headers={"content-type": "text/plain"}
            ),
            415,
        ),
        (
            httpx.post(
                url, content=b"x" * (64 * 1024 + 1), headers={"content-type": "application/json"}
            ),
            413,
        ),
        (httpx.post(url, json={"campaign": LIVE}), 422),
        (httpx.post(url, json=sheet("no-such-campaign")), 422),
        (httpx.post(url, json=sheet(LIVE, started_at="2023-09-14T10:01:02")), 422),
        (httpx.post(url, json=[1, 2]), 422),
        (httpx.get(f"{server.base}/v1/campaigns/{LIVE}/submissions/nosuchsubmission"), 404),
        (httpx.get(f"{server.base}/v1/campaigns/nope/leaderboard"), 404),
        (
            httpx.get(f"{server.base}/v1/campaigns/{LIVE}/leaderboard", params={"level": "city"}),
            422,
        ),
    ]
    for response, expected in cases:
        assert response.status_code == expected, response.text
        assert "detail" in response.json()
    missing = httpx.post(
        url, json={k: v for k, v in sheet(LIVE).items() if k != "link_code"}
    ).json()
    assert any(e["loc"] == ["link_code"] for e in missing["errors"])


def test_health_metrics_and_live_stream(server: EmbeddedServer, scenario: dict[str, Any]) -> None:
    assert httpx.get(f"{server.base}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server.base}/readyz").status_code == 200
    metrics = httpx.get(f"{server.base}/metrics", headers=ADMIN).text
    assert 'survey_collector_requests_total{status="202"}' in metrics
    with httpx.stream("GET", f"{server.base}/v1/campaigns/{LIVE}/live", timeout=10) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        snapshot = None
        for line in lines:
            if line.startswith("data: "):
                snapshot = json.loads(line[6:])
                break
        assert snapshot is not None and snapshot["totals"]["valid"] == 3
        assert post(server, sheet(LIVE, "Sh9zY8xW")).status_code == 202
        for line in lines:
            if line.startswith("data: "):
                changed = json.loads(line[6:])
                break
        assert changed["totals"]["valid"] == 4 and changed["changed_units"] == ["sh-uni"]
    scenario["extra_valid"] = 1


def test_counts_survive_clean_restart_and_sigkill(
    server: EmbeddedServer, scenario: dict[str, Any]
) -> None:
    check_after = {"sh-uni": scenario.get("extra_valid", 0)}
    for how in ("clean", "kill"):
        if how == "clean":
            server.stop()
        else:
            server.kill()
        server.start()
        units = board(server, "unit")
        assert units["gd-cyber"]["valid"] == 2 and units["gd-cyber"]["rejected"] == 6
        assert units["sh-uni"]["valid"] == check_after["sh-uni"]
        # An identical resend after the restart is still absorbed.
        assert post(server, scenario["a1"]).status_code == 202
        assert post(server, scenario["a2"]).status_code == 202
        time.sleep(1.0)
        assert board(server, "unit")["gd-cyber"]["valid"] == 2


def test_sigkill_under_load_loses_nothing_and_counts_once(
    server: EmbeddedServer, tmp_path: Path
) -> None:
    before = board(server, "unit")["gx-net"]["valid"]
    bodies = [sheet(LIVE, "Gx1aB2cD") for _ in range(400)]
    acked: set[str] = set()

    def send(body: dict[str, Any]) -> str | None:
        try:
            return body["submission_id"] if post(server, body).status_code == 202 else None
        except httpx.HTTPError:
            return None

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(send, b) for b in bodies]
        time.sleep(0.4)
        server.kill()  # mid-stream: some answered 202, some cut off
        for f in futures:
            if (sid := f.result()) is not None:
                acked.add(sid)
    assert len(acked) > 0, "the kill came before any 202; nothing was tested"
    server.start()
    # Every acknowledged sheet survived the kill and has a verdict.
    for sid in list(acked)[:50]:
        assert status_of(server, LIVE, sid)["status"] == "accepted"
    # Clients retry what was not acknowledged, with the same ids; the rest are resends.
    for body in bodies:
        assert post(server, body).status_code == 202
    deadline = time.monotonic() + 90
    while board(server, "unit")["gx-net"]["valid"] != before + len(bodies):
        assert time.monotonic() < deadline, board(server, "unit")["gx-net"]
        time.sleep(0.2)
    time.sleep(1.0)
    assert board(server, "unit")["gx-net"]["valid"] == before + len(bodies)
