"""The ClickHouse sink commits an offset only after the store took its rows (fakes, no services)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from typing import Any

from kafka import TopicPartition

from schemas.events import SubmissionJudged, encode_event
from stream_processors.sink import JudgedSink

TP = TopicPartition("judged", 0)


class Record:
    def __init__(self, offset: int, value: bytes) -> None:
        self.partition, self.offset, self.value = 0, offset, value


def verdict(n: int) -> SubmissionJudged:
    return SubmissionJudged(
        submission_id=f"sub-{n:05d}", campaign="c", fingerprint=f"fp{n}",
        source_position=f"0:{n}", received_at=dt.datetime(2023, 9, 14, tzinfo=dt.UTC),
        status="accepted", rules_version="test",
    )


class FakeConsumer:
    """Hands out scripted batches, then stops the sink once they are all consumed."""

    def __init__(self, batches: list[list[Record]], stop: threading.Event) -> None:
        self.batches = batches
        self.stop = stop
        self.commits: list[dict[TopicPartition, int]] = []
        self.events: list[str] = []

    def poll(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Record]]:
        if self.batches:
            return {TP: self.batches.pop(0)}
        self.stop.set()
        return {}

    def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        self.commits.append({tp: o.offset for tp, o in offsets.items()})
        self.events.append(f"commit {offsets[TP].offset}")


class FlakyStore:
    def __init__(self, failures: int, consumer: FakeConsumer, stop_when_failing: bool = False):
        self.failures = failures
        self.consumer = consumer
        self.stop_when_failing = stop_when_failing
        self.rows: list[SubmissionJudged] = []

    def insert_judged(self, rows: Sequence[SubmissionJudged]) -> int:
        if self.failures:
            self.failures -= 1
            if self.stop_when_failing:
                self.consumer.stop.set()
            raise ConnectionError("ClickHouse is away")
        self.rows.extend(rows)
        self.consumer.events.append(f"insert {len(rows)}")
        return len(rows)


def records(start: int, n: int) -> list[Record]:
    return [Record(i, encode_event(verdict(i))) for i in range(start, start + n)]


def run_sink(consumer: FakeConsumer, store: FlakyStore, batch_rows: int) -> JudgedSink:
    sink = JudgedSink(consumer, store, batch_rows=batch_rows, batch_seconds=60,  # type: ignore[arg-type]
                      max_backoff_s=0.01)
    sink.run(consumer.stop)
    return sink


def test_offsets_are_committed_after_the_store_took_the_batch_and_retried_until_it_did() -> None:
    stop = threading.Event()
    consumer = FakeConsumer([records(0, 3), records(3, 2), records(5, 5)], stop)
    store = FlakyStore(failures=3, consumer=consumer)
    sink = run_sink(consumer, store, batch_rows=5)
    assert consumer.events == ["insert 5", "commit 5", "insert 5", "commit 10"]
    assert [r.submission_id for r in store.rows] == [f"sub-{i:05d}" for i in range(10)]
    assert sink.healthy


def test_nothing_is_committed_when_stopped_while_the_store_is_down() -> None:
    stop = threading.Event()
    consumer = FakeConsumer([records(0, 5)], stop)
    store = FlakyStore(failures=100, consumer=consumer, stop_when_failing=True)
    sink = run_sink(consumer, store, batch_rows=5)
    assert consumer.commits == [] and store.rows == []
    assert not sink.healthy
