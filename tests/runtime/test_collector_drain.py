"""A collector stopped under load drains: SIGTERM makes /readyz answer 503 first while it goes on
taking sheets, then the requests in flight finish; every sheet that got a 202 is judged.

Catches: a collector that stops at once on SIGTERM (no 503 on /readyz before it closes, so a
load balancer keeps sending to a closing port), and one that answers 202 for a sheet it did not
append (it would never get a verdict).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace

import httpx
import pytest

from tests.helpers import campaign_definition, sheet, status_of
from tests.integration.distributed_stack import Stack, wait_until

pytestmark = pytest.mark.integration

CAMPAIGN = "drain-2026"
DRAIN_S = 4.0


def _readyz(url: str) -> int:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code
    except httpx.HTTPError:
        return 0


def test_sigterm_drains_before_stopping_and_loses_no_accepted_sheet(
    new_stack: Callable[..., Stack],
) -> None:
    stack = new_stack(SURVEY_DRAIN_SECONDS=str(DRAIN_S)).start()
    assert stack.define(campaign_definition(CAMPAIGN)).status_code == 200
    stack.post_until_taken(sheet(CAMPAIGN), timeout_s=60)

    taken: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                body = sheet(CAMPAIGN)
                try:
                    r = client.post(f"{stack.collector_url}/v1/submissions", json=body)
                except httpx.HTTPError:
                    time.sleep(0.05)
                    continue
                if r.status_code == 202:
                    taken.append(str(body["submission_id"]))

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        wait_until("some sheets taken", lambda: len(taken) >= 20, 60)
        collector = stack.roles["collector"]
        assert collector.proc is not None
        collector.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        wait_until("/readyz 503 while draining", lambda: _readyz(stack.collector_url) == 503,
                   DRAIN_S)
        during = len(taken)
        wait_until("sheets still taken while draining", lambda: len(taken) > during + 5,
                   DRAIN_S)
        collector.proc.wait(60)
        assert time.monotonic() - signalled >= DRAIN_S * 0.9  # it waited out the drain
        assert collector.proc.returncode == 0, collector.tail()
    finally:
        stop.set()
        loader.join(30)
    assert _readyz(stack.collector_url) == 0  # closed
    api = SimpleNamespace(base=stack.api_url)
    for sid in taken:
        assert status_of(api, CAMPAIGN, sid, timeout=120)["status"] == "accepted"
