"""Two workers share the raw topic's partitions; one is stopped (SIGTERM) and started again with
the same static instance id while sheets flow: the group rebalances and every sheet counts once.
Both run on one machine with one data dir (as infra/stack would): each keeps its RocksDB tables
in its own directory, and the restarted one opens its own again."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator

import pytest

from schemas.settings import Settings
from stream_processors.faust_topology import Topology
from tests.helpers import campaign_definition, sheet
from tests.integration.distributed_stack import Stack, Worker, wait_until
from tests.scaleout.load import Stream, clickhouse_counts, discard, valid_counts

pytestmark = pytest.mark.integration
SHEETS = 2400  # at least: a third before the stop, a third while down, a third after
LINKS = {"Gd7kQ2xP": "gd-cyber", "Gx1aB2cD": "gx-net", "Sh9zY8xW": "sh-uni"}


@pytest.fixture(scope="module")
def stack(scaleout_stack: Callable[..., Stack]) -> Iterator[Stack]:
    # 4 raw partitions (Stack's default): two workers get two each.
    s = scaleout_stack().start(worker=False)
    yield s
    discard(s)


def test_worker_restarted_mid_stream_rebalances_and_counts_exactly(stack: Stack) -> None:
    first, second = Worker(stack, 1).start(), Worker(stack, 2).start()
    first.wait_ready()
    second.wait_ready()
    campaign = "c-workers"
    assert stack.define(campaign_definition(campaign)).status_code == 200
    stack.post_until_taken(sheet(campaign, "NoSuch12"), 20)
    started = time.monotonic()
    load = Stream(stack.collector_url + "/v1/submissions",
                  lambda: sheet(campaign, random.choice(list(LINKS))))
    try:
        load.wait_for(SHEETS // 3)
        # Both members hold partitions: each has judged part of the stream.
        wait_until("both workers judging", lambda: first.judged() > 0 and second.judged() > 0,
                   90, 0.25)
        before = f"judged before the stop: {first.judged()} + {second.judged()}"
        assert second.role is not None
        second.role.stop(timeout_s=30)  # SIGTERM: faust finishes what it took, then commits
        load.wait_for(SHEETS // 3)  # sheets keep coming while it is gone
        second.start()  # the same instance id: it takes its partitions back
        load.wait_for(SHEETS // 3)  # ... and while it rejoins
        second.wait_ready()
        # Back in the group, the restarted worker judges its share of what keeps coming.
        wait_until("the restarted worker judges again", lambda: second.judged() > 0, 90, 0.25)
    finally:
        bodies = load.stop()
    expected = dict.fromkeys(LINKS.values(), 0)
    for body in bodies:
        expected[LINKS[body["link_code"]]] += 1
    assert len(bodies) >= SHEETS and len(set(load.result.acked)) == len(bodies)
    try:
        wait_until("every sheet counted",
                   lambda: valid_counts(stack, campaign) == expected, 120, 0.5)
    except TimeoutError:
        assert valid_counts(stack, campaign) == expected
    time.sleep(1.5)  # late duplicates would show now
    assert valid_counts(stack, campaign) == expected
    total = len(bodies) + 1  # + the probe
    assert clickhouse_counts(stack, campaign) == (total, total)
    for sid in random.sample(load.result.acked, 20):
        assert stack.status(campaign, sid).json()["status"] == "accepted"
    reconciled = stack.run("reconcile")
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    # One directory of RocksDB tables per worker instance under the one data dir.
    topology = Topology.of(Settings(topic_prefix=stack.prefix))
    app_dir = stack.workdir / "faust" / topology.app_id
    assert sorted(p.name for p in app_dir.iterdir()) == sorted(
        [first.instance_id, second.instance_id])
    for worker in (first, second):
        tables = list((app_dir / worker.instance_id).glob("v*/tables/*.db"))
        assert tables, f"no tables in {app_dir / worker.instance_id}"
    print(f"\nworkers: {before}; {len(bodies)} sheets; after the restart: first "
          f"{first.judged()}, second {second.judged()}; {time.monotonic() - started:.1f} s")
