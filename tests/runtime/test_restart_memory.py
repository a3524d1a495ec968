"""`serve` restarted keeps judging exactly: after a clean stop it reads the judging memory's
checkpoint (and the anomaly detectors theirs) instead of walking the stored verdicts; after a
SIGKILL it rebuilds both from the store.

Catches: a restart whose judging memory lacks verdicts stored before it (a conflicting resend
of an earlier sheet would be judged new and counted twice; a reused device would be credited
again), whether the memory came from a checkpoint or from the store.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import campaign_definition, sheet, status_of
from tests.integration.embedded_server import ADMIN, EmbeddedServer

pytestmark = pytest.mark.integration

CAMPAIGN = "restart-2026"


def _post(server: EmbeddedServer, body: dict[str, object]) -> None:
    r = httpx.post(f"{server.base}/v1/submissions", json=body, timeout=20)
    assert r.status_code == 202, r.text


def _later_copies_are_caught(server: EmbeddedServer, first: dict[str, object]) -> None:
    conflicting = {**first, "opinion": "改过的意见"}
    _post(server, conflicting)
    reused = sheet(CAMPAIGN, device_id=first["device_id"])
    _post(server, reused)
    assert status_of(server, CAMPAIGN, str(reused["submission_id"]))["reasons"] == [
        "duplicate_respondent"]
    deadline = time.monotonic() + 30
    while True:
        r = httpx.get(f"{server.base}/v1/campaigns/{CAMPAIGN}/counts?by=reason",
                      headers=ADMIN, timeout=10)
        reasons = {row["reason"]: row for row in r.json()["rows"]} if r.status_code == 200 else {}
        if "duplicate_submission" in reasons or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert "duplicate_submission" in reasons, r.text
    board = httpx.get(f"{server.base}/v1/campaigns/{CAMPAIGN}/leaderboard?level=unit",
                      timeout=10).json()
    assert sum(row["valid"] for row in board["rows"]) == 1, board


def test_clean_stop_restores_the_checkpoint_and_a_kill_rebuilds(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = EmbeddedServer(data).start()
    try:
        assert server.define(campaign_definition(CAMPAIGN)).status_code == 200
        first = sheet(CAMPAIGN)
        _post(server, first)
        assert status_of(server, CAMPAIGN, str(first["submission_id"]))["status"] == "accepted"
    finally:
        server.stop()
    assert (data / "judge-memory.ckpt").exists()
    assert (data / "detectors.ckpt").exists()

    server = EmbeddedServer(data, port=server.port).start()
    try:
        _later_copies_are_caught(server, first)
        assert "judging memory restored" in server.log_tail()
        assert "anomaly detectors restored" in server.log_tail()
    finally:
        server.kill()  # no checkpoint of this run: the next start must rebuild

    second = EmbeddedServer(data).start()
    try:
        _later_copies_are_caught(second, first)
        assert "verdicts remembered" in second.log_tail()
        assert "anomaly detectors rebuilt" in second.log_tail()
    finally:
        second.stop()
