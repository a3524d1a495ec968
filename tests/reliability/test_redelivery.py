"""Redelivery forced by hand: with the worker stopped, the judging app's consumer group is rewound
to the start of the raw and assessed topics and the sink's group to the start of the judged
topic; the restarted worker judges and stores everything again. Nothing may change: the same
verdicts (resends, conflicting resends and repeat respondents included), the same counts."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from schemas.settings import Settings
from stream_processors.faust_topology import Topology
from tests.helpers import campaign_definition, sheet
from tests.integration.distributed_stack import Stack, wait_until
from tests.reliability.support import (
    LINKS,
    committed,
    end_offsets,
    group_state,
    post_all,
    rewind,
    stored_rows,
)

pytestmark = pytest.mark.integration
CAMPAIGN = "rel-redelivery"
ORIGINALS = 800


@pytest.fixture(scope="module")
def stack(new_stack: Callable[..., Stack]) -> Stack:
    return new_stack().start()


def boards(stack: Stack) -> dict[str, dict[str, tuple[int, int]]]:
    return {level: {k: (int(r["valid"]), int(r["rejected"]))
                    for k, r in stack.board(CAMPAIGN, level).items()}
            for level in ("unit", "province", "work_region")}


def total_stored(stack: Stack) -> int:
    return len(stored_rows(stack, CAMPAIGN))


def test_rewound_consumer_groups_redeliver_without_double_counting(stack: Stack) -> None:
    assert stack.define(campaign_definition(CAMPAIGN)).status_code == 200
    stack.post_until_taken(sheet(CAMPAIGN, "NoSuch12"), 30)  # rejected: unknown link
    rng = random.Random(7)
    originals = [sheet(CAMPAIGN, rng.choice(list(LINKS))) for _ in range(ORIGINALS)]
    post_all(stack, originals)
    wait_until("originals stored", lambda: total_stored(stack) == ORIGINALS + 1, 120, 0.5)

    # Once the originals are judged: verdicts that depend on what was judged before.
    resent = rng.sample(originals, 60)  # identical resends: absorbed
    conflicting = [{**b, "opinion": "改了主意"} for b in rng.sample(originals, 20)]
    repeat_devices = [sheet(CAMPAIGN, b["link_code"], device_id=b["device_id"])
                      for b in rng.sample(originals, 20)]
    post_all(stack, resent + conflicting + repeat_devices)
    stored = ORIGINALS + 1 + len(conflicting) + len(repeat_devices)
    wait_until("every verdict stored", lambda: total_stored(stack) == stored, 120, 0.5)

    expected_valid = {u: 0 for u in set(LINKS.values())}
    for body in originals:
        expected_valid[LINKS[body["link_code"]]] += 1
    before = boards(stack)
    assert {u: v for u, (v, _) in before["unit"].items()} == expected_valid
    rows_before = sorted(stored_rows(stack, CAMPAIGN))
    by_id = {sid: (status, reasons) for sid, _, status, reasons in rows_before}
    assert all(by_id[b["submission_id"]][0] == "rejected" and "duplicate_respondent"
               in by_id[b["submission_id"]][1] for b in repeat_devices)
    conflicted = [r for r in rows_before if r[0] in {b["submission_id"] for b in conflicting}]
    assert sorted(r[3] for r in conflicted).count(("duplicate_submission",)) == len(conflicting)

    topology = Topology.of(Settings(topic_prefix=stack.prefix))
    boot = stack.kafka_bootstrap
    ends_before = {t: sum(end_offsets(boot, t).values())
                   for t in (topology.assessed, topology.judged)}

    # The worker keeps its tables in RocksDB, in its own directory: a restart keeps them.
    tables = {p.name: p.stat().st_ino for p in stack.worker_tables().glob("v*/tables/*.db")}
    assert any(name.startswith("fingerprints-") for name in tables), tables

    # The worker stops; its groups empty once its static members' sessions have expired.
    stack.roles["worker"].stop()
    for group in (topology.app_id, topology.sink_group):
        wait_until(f"group {group} empty", lambda g=group: group_state(boot, g)  # type: ignore[misc]
                   in ("Empty", "Dead"), 60, 0.5)
    handed_back = rewind(boot, topology.app_id, [topology.raw, topology.assessed])
    handed_back |= rewind(boot, topology.sink_group, [topology.judged])
    print("records handed back:", handed_back, "ends:", {
        t: sum(end_offsets(boot, t).values())
        for t in (topology.raw, topology.assessed, topology.judged)})
    # Everything is handed back (a record of assessed or judged may carry a batch of verdicts).
    assert handed_back[topology.raw] >= ORIGINALS, handed_back
    assert all(n > 0 for n in handed_back.values()), handed_back

    stack.start_worker()
    stack.wait_worker_ready(120)

    def caught_up() -> bool:
        """Every raw record judged again (faust commits a source offset only after flushing
        what it produced from it), every re-emitted verdict read by the next step, and the sink
        committed only after storing: then nothing more is on its way."""
        for topic, before_end in ends_before.items():
            if sum(end_offsets(boot, topic).values()) <= before_end:
                return False  # not re-emitted yet
        for group, topic in ((topology.app_id, topology.raw),
                             (topology.app_id, topology.assessed),
                             (topology.sink_group, topology.judged)):
            ends = end_offsets(boot, topic)
            if committed(boot, group, topic) != ends:
                return False
        return True

    wait_until("everything judged and stored again", caught_up, 180, 1.0)
    wait_until("... and still so a moment later", caught_up, 30, 2.0)

    assert sorted(stored_rows(stack, CAMPAIGN)) == rows_before
    # The restarted worker (same instance) opened the same databases, not rebuilt ones, and
    # judged every sheet it was handed again as the resend it is.
    assert {p.name: p.stat().st_ino
            for p in stack.worker_tables().glob("v*/tables/*.db")} == tables
    resends = stack.worker_metric("survey_processor_identical_resends_total")
    assert resends >= ORIGINALS + len(resent), resends
    assert boards(stack) == before
    reconciled = stack.run("reconcile")
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
