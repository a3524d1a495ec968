"""ClickHouse stopped for 15 s under load: the collector keeps taking sheets (it needs only Kafka),
the worker's sink backs off and retries without committing, and once ClickHouse is back every
sheet that got a 202 is stored and counted exactly once; `survey-ingest reconcile` agrees."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.helpers import campaign_definition, sheet
from tests.integration.distributed_stack import Stack, wait_until
from tests.reliability.support import (
    DedicatedService,
    Senders,
    assert_counted_once,
    stored_rows,
)

pytestmark = pytest.mark.integration
CAMPAIGN = "rel-clickhouse"
# Long enough for several refused inserts; short of the backoff's 25.6 s step, so the retry
# after the 12.8 s one (about 25 s in) finds the server back.
OUTAGE_S = 15.0


@pytest.fixture(scope="module")
def clickhouse() -> Iterator[DedicatedService]:
    server = DedicatedService("clickhouse")
    server.start_or_skip()
    try:
        yield server
    finally:
        server.stop(wipe=True)


@pytest.fixture(scope="module")
def stack(clickhouse: DedicatedService, new_stack: Callable[..., Stack]) -> Stack:
    return new_stack(clickhouse=f"{clickhouse.address}/default").start()


def worker_ready(stack: Stack) -> float | None:
    """The worker's survey_process_ready gauge (1: judging and its sink's last insert went
    through), or None when its metrics do not answer."""
    try:
        text = httpx.get(f"http://127.0.0.1:{stack.worker_metrics_port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return None
    for line in text.splitlines():
        if line.startswith("survey_process_ready "):
            return float(line.split()[1])
    return None


def test_clickhouse_outage_under_load_loses_nothing_and_counts_once(
    clickhouse: DedicatedService, stack: Stack
) -> None:
    assert stack.define(campaign_definition(CAMPAIGN)).status_code == 200
    probe = sheet(CAMPAIGN, "NoSuch12")
    stack.post_until_taken(probe, 30)
    worker_proc = stack.roles["worker"].proc
    senders = Senders(stack.collector_url, CAMPAIGN).start()
    try:
        wait_until("load flowing", lambda: senders.count_acked() >= 200, 60)
        wait_until("verdicts stored before the outage",
                   lambda: len(stored_rows(stack, CAMPAIGN)) > 50, 90, 0.5)

        clickhouse.stop()
        down_since = time.monotonic()
        acked_at_stop = senders.count_acked()
        # The sink's insert fails: the worker reports itself not ready (and keeps retrying).
        wait_until("the worker notices the store is gone",
                   lambda: worker_ready(stack) == 0.0, OUTAGE_S + 30, 0.25)
        # The collector does not depend on the store: sheets are still taken meanwhile.
        wait_until("sheets taken during the outage",
                   lambda: senders.count_acked() >= acked_at_stop + 200, OUTAGE_S)
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_since)))  # the fault, not a check
        stack.roles["worker"].check_alive()
        clickhouse.start()

        # The sink's next retry (capped backoff) gets through: ready again, load still flowing.
        wait_until("the worker's sink stores again",
                   lambda: worker_ready(stack) == 1.0, 90, 0.5)
        more = senders.count_acked() + 100
        wait_until("load flowing after the outage", lambda: senders.count_acked() >= more, 60)
    finally:
        senders.finish(timeout_s=60)

    senders.assert_all_taken()
    refused = [a for a in senders.answers if a.status != 202]
    assert not refused, f"{len(refused)} answers other than 202 while only ClickHouse was away"
    # Ready again without a restart: the same worker's sink retried its batch until it went in.
    assert worker_proc is not None and stack.roles["worker"].proc is worker_proc
    assert worker_proc.poll() is None
    retried = stack.roles["worker"].tail(200_000).count("store refused")

    assert_counted_once(stack, CAMPAIGN, senders.acked, {probe["submission_id"]})
    print(f"{len(senders.acked)} sheets taken; the sink logged {retried} refused inserts")
