"""The bounded judging memory (Bloom filters + store lookups) judges exactly as the all-in-RAM
JudgeState does, on both adapters, whatever the batch boundaries, filter sizes and prefetches."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence

import pytest

from core.judge import JudgeState, body_device_key, judge, memory_key
from core.judge_memory import BoundedJudgeMemory
from core.registry import Registry
from schemas.campaign import load_campaign_file
from schemas.events import CampaignDefined, SubmissionJudged, SubmissionReceived
from simulation import EXAMPLE_CAMPAIGN
from simulation.generator import generate_sheet
from storage import SqlStore

HASH_KEY = "test-key"
NOW = dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


@pytest.fixture(scope="module")
def stream() -> tuple[Registry, list[SubmissionReceived]]:
    """1,500 generated sheets with every flaw (resends, conflicting resends, reused devices)."""
    definition = load_campaign_file(EXAMPLE_CAMPAIGN)
    registry = Registry()
    registry.apply(CampaignDefined(
        campaign=definition.campaign, defined_at=NOW - dt.timedelta(days=20),
        definition=definition,
    ))
    rng = random.Random(7)
    events = [
        SubmissionReceived(
            received_at=NOW + dt.timedelta(milliseconds=50 * i + 300),
            body=generate_sheet(definition, rng, NOW + i * dt.timedelta(milliseconds=50),
                                valid_share=0.6).body,
        )
        for i in range(1500)
    ]
    return registry, events


def _reference(registry: Registry, events: Sequence[SubmissionReceived]) -> list[tuple[str, ...]]:
    state = JudgeState.empty()
    return [_summary(*judge(e, f"0:{i}", registry, state, HASH_KEY)) for i, e in enumerate(events)]


def _summary(judged: SubmissionJudged, resend: bool) -> tuple[str, ...]:
    return (judged.submission_id, judged.status, ",".join(judged.reasons), str(resend),
            str(judged.first_of_id))


def _device_key(event: SubmissionReceived) -> str:
    return body_device_key(event.body, HASH_KEY)


def _bounded(
    store: SqlStore, registry: Registry, events: Sequence[SubmissionReceived],
    memory: BoundedJudgeMemory, seed: int, prefetch: bool,
) -> list[tuple[str, ...]]:
    """Judge in random-sized batches, storing each batch before the next, as the processor."""
    rng = random.Random(seed)
    out: list[tuple[str, ...]] = []
    start = 0
    while start < len(events):
        batch = list(enumerate(events))[start : start + rng.randint(1, 300)]
        memory.begin_batch(
            (memory_key(e.body) for _, e in batch) if prefetch else (),
            (_device_key(e) for _, e in batch) if prefetch else (),
        )
        rows = []
        for offset, event in batch:
            judged, resend = judge(event, f"0:{offset}", registry, memory, HASH_KEY)
            out.append(_summary(judged, resend))
            if not resend:
                rows.append(judged)
        store.insert_judged(rows)
        start += len(batch)
    return out


@pytest.mark.parametrize(("capacity", "prefetch"), [(100_000, True), (50, True), (50, False)])
def test_bounded_memory_gives_the_in_memory_verdicts(
    store: SqlStore, stream: tuple[Registry, list[SubmissionReceived]], capacity: int,
    prefetch: bool,
) -> None:
    registry, events = stream
    expected = _reference(registry, events)
    # The stream has what depends on history, or this would prove little.
    assert any(s[3] == "True" for s in expected)  # resends
    assert any("duplicate_respondent" in s[2] for s in expected)
    assert any("duplicate_submission" in s[2] for s in expected)
    memory = BoundedJudgeMemory(store, capacity=capacity)
    assert _bounded(store, registry, events, memory, seed=capacity, prefetch=prefetch) == expected
    # A roomy filter asks the store only about (nearly) the keys seen before; a full one, often.
    if capacity == 100_000:
        assert memory.lookups < len(events) // 2
    else:
        assert memory.lookups > len(events)


def test_a_restart_rebuilds_from_the_store_and_a_failed_batch_is_judged_again(
    store: SqlStore, stream: tuple[Registry, list[SubmissionReceived]],
) -> None:
    registry, events = stream
    expected = _reference(registry, events)
    first = BoundedJudgeMemory(store, capacity=100_000)
    half = len(events) // 2
    got = _bounded(store, registry, events[:half], first, seed=1, prefetch=True)
    # A batch judged but never stored (the insert failed): the retry must not see resends.
    lost = [(half + i, e) for i, e in enumerate(events[half : half + 200])]
    first.begin_batch((memory_key(e.body) for _, e in lost), (_device_key(e) for _, e in lost))
    for offset, event in lost:
        judge(event, f"0:{offset}", registry, first, HASH_KEY)
    three_quarters = half + len(events) // 4
    got += _bounded(store, registry, events[half:three_quarters], first, seed=2, prefetch=True)
    # A new process: the filters are rebuilt from the stored verdicts only.
    second = BoundedJudgeMemory(store, capacity=100_000)
    for row in store.iter_judge_memory():
        second.remember(row)
    got += _bounded(store, registry, events[three_quarters:], second, seed=3, prefetch=True)
    assert got == expected
