"""Ambiguous produce: the broker frozen (SIGSTOP) for 20 s under load, then let go (SIGCONT).

Writes in flight when it froze are answered 503 once their delivery times out, yet the broker
may still take them when it wakes (the requests sat in its socket buffers): the client's resend
then puts a second copy of the sheet in the raw log. Neither may show downstream: one verdict
per sheet, counted once. And no producer may be left wedged: the collector takes sheets again
once the broker answers. A second test forces the producer into kafka-python's fatal state and
checks the collector replaces it.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
from kafka.admin import ConfigResource, ConfigResourceType

from eventlog.kafka_log import BACKSTOP_S
from schemas.settings import Settings
from stream_processors.faust_topology import Topology
from tests.helpers import campaign_definition, sheet
from tests.integration.distributed_stack import Stack, wait_until
from tests.reliability.support import (
    DedicatedService,
    Senders,
    admin,
    assert_counted_once,
    end_offsets,
    restart_worker_if_exited,
)

pytestmark = pytest.mark.integration
CAMPAIGN = "rel-produce"
FATAL_CAMPAIGN = "rel-produce-fatal"
FROZEN_S = 20.0
# After SIGCONT the broker may need a few seconds (its own session with the controller) before
# it takes writes; past this, a 503 means the collector is stuck, not the broker.
RECOVERY_S = BACKSTOP_S + 40.0  # generous: a 2-core CI box is slow to resume a JVM


@pytest.fixture(scope="module")
def stack(broker: DedicatedService, new_stack: Callable[..., Stack]) -> Stack:
    return new_stack(kafka=broker.address).start()


def raw_topic(stack: Stack) -> str:
    return Topology.of(Settings(topic_prefix=stack.prefix)).raw


def test_a_frozen_broker_leaves_no_duplicate_verdict_and_no_wedged_producer(
    broker: DedicatedService, stack: Stack
) -> None:
    """Deliberate break it catches: `KafkaRawLog.append` no longer marking a producer whose
    write was failed by the backstop as wedged (the `self._producer_wedged = True`): after the
    freeze kafka-python's producer may never settle a write again, and the collector answers
    503 long after the broker is back. (A store that inserted every verdict, resends included,
    would be caught by the duplicate check.)"""
    assert stack.define(campaign_definition(CAMPAIGN)).status_code == 200
    probe = sheet(CAMPAIGN)
    stack.post_until_taken(probe, 30)
    pid = broker.pid()
    senders = Senders(stack.collector_url, CAMPAIGN).start()
    try:
        wait_until("load flowing", lambda: senders.count_acked() >= 200, 60)
        os.kill(pid, signal.SIGSTOP)
        frozen_at = time.monotonic()
        try:
            time.sleep(FROZEN_S)  # the fault, not a check
        finally:
            os.kill(pid, signal.SIGCONT)
        thawed_at = time.monotonic()
        acked_at_thaw = senders.count_acked()
        try:
            wait_until("load flowing again after SIGCONT",
                       lambda: senders.count_acked() >= acked_at_thaw + 200, RECOVERY_S + 60)
        except TimeoutError as exc:
            since = Counter(a.status for a in senders.answers if a.started >= thawed_at)
            raise AssertionError(f"{exc}: answers since SIGCONT {dict(since)}\n"
                                 f"{stack.roles['collector'].tail(6000)}") from None
    finally:
        senders.finish(timeout_s=60)

    senders.assert_all_taken()
    refused = [a for a in senders.answers if a.status != 202]
    assert refused, "the freeze refused nothing: it did not happen"
    # 503s only while the broker could not write: none answered before the freeze, none to a
    # request sent once the broker had had time to come back.
    early = [a for a in refused if a.ended < frozen_at]
    late = [a for a in refused if a.started > thawed_at + RECOVERY_S]
    assert not early and not late, (f"{len(early)} refused before the freeze, {len(late)} "
                                    f"more than {RECOVERY_S:.0f} s after it")

    restart_worker_if_exited(stack)
    stack.wait_worker_ready(120)
    acked = {**senders.acked, probe["submission_id"]: "gd-cyber"}
    assert_counted_once(stack, CAMPAIGN, acked, set())
    logged = sum(end_offsets(stack.kafka_bootstrap, raw_topic(stack)).values())
    print(f"{len(acked)} sheets taken, {len(refused)} answers 503; the raw log holds "
          f"{logged} records for them")


def test_a_producer_in_a_fatal_state_is_replaced(stack: Stack) -> None:
    """A record over the raw topic's max.message.bytes is a produce error kafka-python cannot
    retry, which puts its idempotent producer in a fatal state: every batch fails from then on.
    Once the limit is back, the collector must take sheets again with a new producer.

    Deliberate break it catches: `KafkaRawLog` not replacing a producer in an error state
    (`producer_failed` always False): every sheet is then answered 503 for good."""
    assert stack.define(campaign_definition(FATAL_CAMPAIGN)).status_code == 200
    small = sheet(FATAL_CAMPAIGN)
    stack.post_until_taken(small, 30)
    topic = raw_topic(stack)
    replaced_before = stack.roles["collector"].tail(1_000_000).count("replacing it")
    refused: list[dict[str, object]] = []
    client = admin(stack.kafka_bootstrap)
    try:
        client.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                             configs={"max.message.bytes": "4096"})])

        def refused_while_limited() -> bool:
            big = sheet(FATAL_CAMPAIGN, opinion="很长的意见" * 1000)  # ~30 KB as JSON: over it
            r = stack.post(big)
            assert r.status_code in (202, 503), r.text  # 202: the limit not in force yet
            if r.status_code == 503:
                refused.append(big)
            return bool(refused)

        wait_until("an oversized sheet refused", refused_while_limited, 30, 0.5)
    finally:
        client.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                             configs={"max.message.bytes": "1048588"})])
        client.close()

    def taken(body: dict[str, object]) -> bool:
        try:
            return stack.post(body).status_code == 202
        except httpx.HTTPError:
            return False

    after = sheet(FATAL_CAMPAIGN)
    wait_until("a sheet taken again after the fatal error", lambda: taken(after), 30, 0.5)
    wait_until("the oversized sheet taken once the limit is back",
               lambda: taken(refused[0]), 30, 0.5)
    replaced = stack.roles["collector"].tail(1_000_000).count("replacing it") - replaced_before
    assert replaced >= 1, stack.roles["collector"].tail()
    for body in (small, after, refused[0]):
        wait_until("judged", judged(stack, str(body["submission_id"])), 60, 0.5)


def judged(stack: Stack, sid: str) -> Callable[[], bool]:
    return lambda: stack.status(FATAL_CAMPAIGN, sid).json().get("status") == "accepted"
