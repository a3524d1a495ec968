"""The Kafka broker stopped and started again under load: the collector answers 503, never 202,
while it is away; clients resend with the same submission_id; afterwards every sheet that got a
202 is stored and counted exactly once, and `survey-ingest reconcile` finds no difference."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import campaign_definition, sheet
from tests.integration.distributed_stack import Stack, wait_until
from tests.reliability.support import (
    DedicatedService,
    Senders,
    assert_counted_once,
    restart_worker_if_exited,
)

pytestmark = pytest.mark.integration
CAMPAIGN = "rel-broker"


@pytest.fixture(scope="module")
def stack(broker: DedicatedService, new_stack: Callable[..., Stack]) -> Stack:
    return new_stack(kafka=broker.address).start()


def test_broker_restart_under_load_loses_nothing_and_counts_once(
    broker: DedicatedService, stack: Stack, tmp_path: Path
) -> None:
    assert stack.define(campaign_definition(CAMPAIGN)).status_code == 200
    probe = sheet(CAMPAIGN, "NoSuch12")  # unknown link: stored, rejected, never counted
    stack.post_until_taken(probe, 30)
    senders = Senders(stack.collector_url, CAMPAIGN).start()
    try:
        wait_until("load flowing", lambda: senders.count_acked() >= 300, 60)

        broker.stop()  # SIGTERM; returns once the broker process has exited
        down_since = time.monotonic()
        # While it is away, the collector refuses (503) and the clients hold their sheets.
        wait_until("the collector answers 503 without its broker",
                   lambda: senders.answered(503, after=down_since) >= 20, 60)
        acked_while_down = senders.count_acked()
        down_until = time.monotonic()
        broker.start()

        back = time.monotonic()
        try:
            wait_until("load flowing again after the broker's return",
                       lambda: senders.count_acked() >= acked_while_down + 300, 120)
        except TimeoutError as exc:
            since = Counter(a.status for a in senders.answers if a.started >= back)
            raise AssertionError(
                f"{exc}: answers since the restart {dict(since)}\n"
                f"collector:\n{stack.roles['collector'].tail(6000)}") from None
    finally:
        senders.finish(timeout_s=60)

    senders.assert_all_taken()
    taken_while_down = [a for a in senders.answers
                        if a.status == 202 and a.started >= down_since and a.ended <= down_until]
    assert not taken_while_down, f"{len(taken_while_down)} answered 202 with no broker"
    refused = senders.answered(503, after=down_since)

    restart_worker_if_exited(stack)
    stack.wait_worker_ready(120)
    assert_counted_once(stack, CAMPAIGN, senders.acked, {probe["submission_id"]})
    print(f"{len(senders.acked)} sheets taken, {refused} answers 503 while the broker was away")
