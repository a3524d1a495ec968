"""A worker killed or stopped while thousands of sheets flow: nothing lost, none counted twice."""

from __future__ import annotations

import concurrent.futures
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from clickhouse_driver import Client

from tests.helpers import campaign_definition, sheet
from tests.integration.distributed_stack import Stack, wait_until

pytestmark = pytest.mark.integration
SHEETS = 3000


@pytest.fixture(scope="module")
def stack(new_stack: Callable[..., Stack]) -> Iterator[Stack]:
    s = new_stack().start()
    yield s
    s.stop()


def stored_ids(stack: Stack, campaign: str) -> list[str]:
    host_port = stack.clickhouse_url.split("://", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    client = Client(host=host, port=int(port), database=stack.database)
    try:
        rows = client.execute(
            f"SELECT submission_id FROM submissions WHERE campaign = '{campaign}'")
    finally:
        client.disconnect()
    return [str(r[0]) for r in rows]


def valid_counts(stack: Stack, campaign: str) -> dict[str, int]:
    return {unit: row["valid"] for unit, row in stack.board(campaign, "unit").items()}


@pytest.mark.parametrize("how", ["sigkill", "sigterm"])
def test_worker_stopped_mid_stream_loses_nothing_and_counts_once(stack: Stack, how: str) -> None:
    campaign = f"c-{how}"
    assert stack.define(campaign_definition(campaign)).status_code == 200
    probe = sheet(campaign, "NoSuch12")
    stack.post_until_taken(probe, 10)

    links = {"Gd7kQ2xP": "gd-cyber", "Gx1aB2cD": "gx-net", "Sh9zY8xW": "sh-uni"}
    bodies = [sheet(campaign, random.choice(list(links))) for _ in range(SHEETS)]
    expected: dict[str, int] = dict.fromkeys(links.values(), 0)
    for body in bodies:
        expected[links[body["link_code"]]] += 1
    acked: list[str] = []
    posted = threading.Semaphore(0)
    # The last third waits until the worker was stopped: a collector faster than the worker's
    # first verdicts must not post everything before the stop (then nothing would be tested).
    stopped = threading.Event()
    last_third = {b["submission_id"] for b in bodies[2 * SHEETS // 3:]}
    client = httpx.Client(timeout=20, limits=httpx.Limits(max_connections=16))

    def send(body: dict[str, Any]) -> None:
        if body["submission_id"] in last_third:
            stopped.wait(120)
        r = client.post(f"{stack.collector_url}/v1/submissions", json=body)
        assert r.status_code == 202, r.text  # the collector never depends on the worker
        acked.append(body["submission_id"])
        posted.release()

    worker = stack.roles["worker"]
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(send, b) for b in bodies]
        for _ in range(SHEETS // 3):
            posted.acquire(timeout=60)
        # Mid-stream: verdicts are being judged, emitted and stored while the worker dies.
        wait_until("verdicts stored before the stop",
                   lambda: len(stored_ids(stack, campaign)) > 1, 90)
        if how == "sigkill":
            worker.kill()
        else:
            worker.stop()  # SIGTERM: faust finishes what it took, then commits
        killed_at = len(acked)
        stopped.set()
        stack.start_worker()
        for f in futures:
            f.result()
    client.close()
    assert killed_at < SHEETS, "the kill came after the last sheet; nothing was tested"
    # Clients that did not hear back resend; here: a sample of identical resends.
    for body in random.sample(bodies, 200):
        assert stack.post(body).status_code == 202

    stack.wait_worker_ready(60)
    try:
        wait_until("every sheet counted",
                   lambda: valid_counts(stack, campaign) == expected, 120, 0.5)
    except TimeoutError:
        assert valid_counts(stack, campaign) == expected
    time.sleep(1.5)  # late duplicates would show now
    assert valid_counts(stack, campaign) == expected
    # Every 202'd submission has exactly one stored verdict.
    ids = stored_ids(stack, campaign)
    assert sorted(ids) == sorted([*acked, probe["submission_id"]])
    for sid in random.sample(acked, 20):
        assert stack.status(campaign, sid).json()["status"] == "accepted"

    reconciled = stack.run("reconcile")
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
