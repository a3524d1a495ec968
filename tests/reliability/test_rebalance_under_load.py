"""Rebalances under load: while sheets flow, the workers go 1 -> 2 -> 1, then a rolling restart
(each worker SIGTERM'd and started again in turn). Every move hands table partitions to a worker
that did not hold them (or held them before the others wrote to them): it must rebuild them from
the changelogs before it judges, or a respondent's second sheet goes uncaught.

tests/scaleout/test_scaleout_workers.py restarts one of two workers and checks the counts; this
one moves partitions both ways, checks the tables across each move (a sheet from the device of a
sheet judged before the move must be rejected as duplicate_respondent), and checks the groups'
committed offsets: advanced on every partition, and no lag left once the load stops.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from schemas.settings import Settings
from stream_processors.faust_topology import Topology
from tests.helpers import campaign_definition, sheet
from tests.integration.distributed_stack import Stack, Worker, wait_until
from tests.reliability.support import (
    LINKS,
    Senders,
    assert_counted_once,
    committed,
    group_members,
    lag,
    stored_rows,
)

pytestmark = pytest.mark.integration
CAMPAIGN = "rel-rebalance"
SEEDS = 24  # sheets per move whose devices the next move's duplicates reuse (~6 a partition)


@pytest.fixture(scope="module")
def stack(new_stack: Callable[..., Stack]) -> Stack:
    return new_stack().start(worker=False)


@pytest.fixture(scope="module")
def first(stack: Stack) -> Worker:
    """The one worker the test begins with (the stack stops it)."""
    worker = Worker(stack, 1).start()
    worker.wait_ready()
    return worker


class Respondents:
    """Sheets posted by the test itself: `seed()` new ones, accepted; `repeat()` a new sheet
    from the device of each seed of the previous round, which must be rejected as
    duplicate_respondent whichever worker holds the device's partition by then."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.round: list[dict[str, Any]] = []
        self.accepted: dict[str, str] = {}  # submission id -> unit
        self.repeats: set[str] = set()

    def seed(self) -> None:
        self.round = []
        for i in range(SEEDS):
            link = list(LINKS)[i % len(LINKS)]
            body = sheet(CAMPAIGN, link)
            self.stack.post_until_taken(body, 30)
            self.round.append(body)
            self.accepted[body["submission_id"]] = LINKS[link]

    def wait_judged(self, timeout_s: float = 60.0) -> None:
        """Until every seed of the round is stored (so its device is in the tables)."""
        ids = {body["submission_id"] for body in self.round}
        wait_until("the round's seeds judged", lambda: ids <= {
            sid for sid, _, status, _ in stored_rows(self.stack, CAMPAIGN)
            if status == "accepted"}, timeout_s, 0.5)

    def repeat(self) -> None:
        for body in self.round:
            again = sheet(CAMPAIGN, body["link_code"], device_id=body["device_id"])
            self.stack.post_until_taken(again, 30)
            self.repeats.add(again["submission_id"])


def test_workers_scaled_and_restarted_under_load_count_each_sheet_once(
    stack: Stack, first: Worker
) -> None:
    """Deliberate break it catches: a worker not rebuilding its tables after a partition moves
    (tried: `_table_set` in stream_processors/faust_app.py writing the table but not its
    changelog record): the worker that takes a partition over does not know the devices judged
    there before, accepts their second sheets, and the counts are too high. (A worker that
    stopped committing after a rebalance, faust-streaming #318, would leave lag behind; one that
    committed before its outputs were stored would lose 202'd sheets.)"""
    topology = Topology.of(Settings(topic_prefix=stack.prefix))
    bootstrap = stack.kafka_bootstrap
    second = Worker(stack, 2)
    assert stack.define(campaign_definition(CAMPAIGN)).status_code == 200
    people = Respondents(stack)
    people.seed()
    people.wait_judged()
    before = {"raw": committed(bootstrap, topology.app_id, topology.raw),
              "judged": committed(bootstrap, topology.sink_group, topology.judged)}
    started = time.monotonic()
    moves: list[str] = []

    def judging(worker: Worker) -> None:
        worker.wait_ready()
        wait_until(f"{worker.key} judging", lambda: worker.judged() > 0, 60, 0.25)

    def moved(what: str) -> None:
        """After a move: the previous round's devices again, then a new round."""
        moves.append(f"{what} at {time.monotonic() - started:.0f} s")
        people.repeat()
        people.seed()
        people.wait_judged()

    senders = Senders(stack.collector_url, CAMPAIGN, threads=3, sheets_per_s=60).start()
    try:
        wait_until("load flowing", lambda: senders.count_acked() >= 100, 60)
        judging(second.start())  # 1 -> 2
        moved("w2 joined")
        assert second.role is not None
        second.role.stop(timeout_s=30)  # 2 -> 1: SIGTERM, faust commits what it finished
        # A static member's partitions move once its session times out (10 s).
        wait_until("w1 alone in the group",
                   lambda: group_members(bootstrap, topology.app_id) == [first.instance_id],
                   40, 0.5)
        moved("w2 left")
        # The rolling restart: w2 started again, then w1 stopped and started again.
        judging(second.start())
        moved("w2 back")
        assert first.role is not None
        first.role.stop(timeout_s=30)
        judging(first.start())
        moved("w1 restarted")
    finally:
        senders.finish(timeout_s=60)

    senders.assert_all_taken()
    acked = {**senders.acked, **people.accepted}
    # First the second sheets (they count nowhere when rejected: waited for by their rows).
    wait_until("every second sheet judged", lambda: people.repeats <= {
        sid for sid, *_ in stored_rows(stack, CAMPAIGN)}, 90, 0.5)
    repeats = {sid: (status, reasons) for sid, _, status, reasons in stored_rows(stack, CAMPAIGN)
               if sid in people.repeats}
    wrong = {sid: v for sid, v in repeats.items()
             if v[0] != "rejected" or "duplicate_respondent" not in v[1]}
    assert not wrong, f"{len(wrong)} devices' second sheets not rejected: {list(wrong.items())[:5]}"
    assert_counted_once(stack, CAMPAIGN, acked, people.repeats, timeout_s=120)

    # Both groups caught up, and their committed offsets moved on every partition.
    wait_until("no lag left", lambda: lag(bootstrap, topology.app_id, topology.raw) == 0
               and lag(bootstrap, topology.app_id, topology.assessed) == 0
               and lag(bootstrap, topology.sink_group, topology.judged) == 0, 60, 0.5)
    after = {"raw": committed(bootstrap, topology.app_id, topology.raw),
             "judged": committed(bootstrap, topology.sink_group, topology.judged)}
    for topic, offsets in after.items():
        stuck = [tp for tp, o in offsets.items() if o <= before[topic].get(tp, 0)]
        assert len(offsets) == 4 and not stuck, (topic, before[topic], offsets)
    print(f"{len(acked)} sheets taken, {len(people.repeats)} second sheets of a device "
          f"rejected; moves: {', '.join(moves)}; {time.monotonic() - started:.1f} s")
