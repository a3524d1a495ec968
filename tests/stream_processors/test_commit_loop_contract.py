"""The commit loop's contract (stream_processors/commit_loop.py), one suite run over both logs it
reads: the embedded file log with its OffsetStore, and real Kafka with a consumer group.

The crash stories are those the three users test on their own (the embedded processor's failed
insert, the sink's outage and stop, a crash between store and commit); here they are told once
against the loop, and every assertion is on the *committed* offsets as the log keeps them (read
back by a fresh reader), not only on what was stored.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError

from eventlog.file_log import FileLog
from eventlog.offsets import OffsetStore
from stream_processors.commit_loop import (
    Backoff,
    Batch,
    Commit,
    CommitLoop,
    Message,
    Source,
)
from stream_processors.commit_sources import FileLogSource, KafkaSource, kafka_commit


class Harness(Protocol):
    """One log with one consumer's committed offset; `reader` is a fresh reader, as after a
    restart (it starts from the committed offset, never from what an earlier reader read)."""

    def append(self, values: Sequence[bytes]) -> None: ...

    def reader(self) -> tuple[Source[bytes], Commit]: ...

    def committed(self) -> int: ...

    def close(self) -> None: ...


class FileHarness:
    def __init__(self, directory: Path) -> None:
        self.raw = FileLog(directory / "raw", fsync=False)
        self.offsets_path = directory / "offsets.json"

    def append(self, values: Sequence[bytes]) -> None:
        self.raw.append_many_sync((v, v) for v in values)

    def reader(self) -> tuple[Source[bytes], Commit]:
        source = FileLogSource(self.raw, OffsetStore(self.offsets_path), "contract")
        return _values(source), source.commit

    def committed(self) -> int:
        # Read, not opened: an OffsetStore clears a commit's temporary file as it opens, and the
        # loop may be committing in its thread right now.
        if not self.offsets_path.exists():
            return 0
        return int(json.loads(self.offsets_path.read_text()).get("contract", 0))

    def close(self) -> None:
        self.raw.close()


class KafkaHarness:
    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap.split(",")
        self.topic = f"commit-loop-{uuid.uuid4().hex[:8]}"
        self.group = f"{self.topic}-group"
        self.tp = TopicPartition(self.topic, 0)
        self.admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        self.admin.create_topics([NewTopic(self.topic, num_partitions=1, replication_factor=1)])
        self.producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        self.consumers: list[KafkaConsumer] = []

    def append(self, values: Sequence[bytes]) -> None:
        for v in values:
            self.producer.send(self.topic, key=v, value=v, partition=0)
        self.producer.flush()

    def reader(self) -> tuple[Source[bytes], Commit]:
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=self.group, enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        consumer.assign([self.tp])  # as the findings consumer does: no rebalance to wait for
        self.consumers.append(consumer)
        return KafkaSource(consumer, lambda record: [record.value]), kafka_commit(consumer)

    def committed(self) -> int:
        deadline = time.monotonic() + 20
        while True:  # the broker's first group (this session's) waits for __consumer_offsets
            try:
                offsets = self.admin.list_group_offsets({self.group: None}).get(self.group, {})
                break
            except KafkaError as exc:
                if not exc.retriable or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        meta = offsets.get(self.tp)
        return 0 if meta is None or meta.offset < 0 else int(meta.offset)

    def close(self) -> None:
        for consumer in self.consumers:
            consumer.close(autocommit=False)
        self.producer.close()
        self.admin.delete_topics([self.topic])
        self.admin.close()


class _values:
    """A FileLogSource whose items are the records' values (the Kafka harness's are too)."""

    def __init__(self, source: FileLogSource) -> None:
        self.source = source

    def poll(self, max_rows: int, timeout_s: float) -> Sequence[Message[bytes]]:
        return [
            Message(m.partition, m.offset, [r.value for r in m.items])
            for m in self.source.poll(max_rows, timeout_s)
        ]


@pytest.fixture(params=["file_log", pytest.param("kafka", marks=pytest.mark.integration)])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    harness: Harness
    if request.param == "kafka":
        harness = KafkaHarness(request.getfixturevalue("kafka_bootstrap"))
    else:
        harness = FileHarness(tmp_path)
    yield harness
    harness.close()


@dataclass
class Store:
    """An idempotent store (as the real ones are, by submission id and fingerprint) that counts
    how often each value was handed to it, and can be told to fail."""

    fail_after: int | None = None  # store this many values of a batch, then raise (mid-batch)
    failures: int = 0  # how many more steps fail that way
    stored: set[bytes] = field(default_factory=set)
    seen: Counter[bytes] = field(default_factory=Counter)
    batches: list[Batch[bytes]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    def step(self, batch: Batch[bytes]) -> None:
        self.batches.append(batch)
        for i, value in enumerate(batch.items):
            if self.failures and self.fail_after is not None and i == self.fail_after:
                self.failures -= 1
                raise ConnectionError("the store went away mid-batch")
            self.seen[value] += 1
            self.stored.add(value)
        self.events.append(f"stored {len(batch.items)}")


def values(n: int) -> list[bytes]:
    return [f"v{i:04d}".encode() for i in range(n)]


def make_loop(
    log: Harness, step: Callable[[Batch[bytes]], None], *, batch_rows: int = 4,
    batch_seconds: float = 0.3, commit: Commit | None = None,
    events: list[str] | None = None,
) -> CommitLoop[bytes]:
    source, real_commit = log.reader()

    def recorded(offsets: Any) -> None:
        if events is not None:
            events.append(f"commit {sorted(offsets.values())}")
        (commit or real_commit)(offsets)

    return CommitLoop(source, recorded, step, batch_rows=batch_rows, batch_seconds=batch_seconds,
                      backoff=Backoff(0.01, 0.02))


def run_until(loop: CommitLoop[bytes], done: Callable[[], bool], timeout_s: float = 30) -> None:
    """Runs the loop in a thread until `done()` (bounded), then stops it and waits for it."""
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + timeout_s
    try:
        while not done() and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(timeout_s)
    assert not thread.is_alive()


def wait_committed(log: Harness, expected: int, timeout_s: float = 10) -> int:
    deadline = time.monotonic() + timeout_s
    while (got := log.committed()) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return got


def test_the_next_offset_is_committed_after_each_batch_was_stored(log: Harness) -> None:
    """Catches: committing the last offset taken instead of the next one to read (the last record
    of every batch would be read twice), or committing before the step returned."""
    log.append(values(10))
    store = Store()
    loop = make_loop(log, store.step, batch_rows=4, events=store.events)
    run_until(loop, lambda: log.committed() == 10)
    assert store.events == [
        "stored 4", "commit [4]", "stored 4", "commit [8]", "stored 2", "commit [10]"
    ]
    assert store.stored == set(values(10)) and set(store.seen.values()) == {1}
    assert log.committed() == 10


def test_a_batch_closes_at_its_row_count_or_when_its_first_record_is_old_enough(
    log: Harness,
) -> None:
    """Catches: a loop that waits for a full batch forever (a quiet campaign's last sheets would
    never be stored), or one that ignores the row bound (unbounded inserts)."""
    log.append(values(7))
    store = Store()
    loop = make_loop(log, store.step, batch_rows=3, batch_seconds=0.5)
    run_until(loop, lambda: len(store.stored) == 7)
    assert [len(b.items) for b in store.batches] == [3, 3, 1]
    assert wait_committed(log, 7) == 7


def test_a_step_failing_mid_batch_is_retried_with_the_same_batch_and_commits_once(
    log: Harness,
) -> None:
    """Catches: a loop that moves on after a failed step (the batch's unstored half is lost when
    the next commit passes it), or that hands a retry a different batch (the findings step would
    detect twice)."""
    log.append(values(4))
    store = Store(fail_after=2, failures=2)
    events: list[str] = []
    loop = make_loop(log, store.step, batch_rows=4, events=events)
    run_until(loop, lambda: log.committed() == 4)
    assert len(store.batches) == 3 and all(b is store.batches[0] for b in store.batches)
    assert events == ["commit [4]"]
    assert store.stored == set(values(4))
    assert store.seen[b"v0000"] == 3 and store.seen[b"v0003"] == 1  # the half, absorbed
    assert loop.healthy


def test_stopping_while_the_step_fails_commits_nothing_and_a_restart_redelivers_the_batch(
    log: Harness,
) -> None:
    """The sink's story: ClickHouse is down mid-batch and the worker is stopped. Catches: a loop
    that commits on the way out what it never stored (those sheets would never be counted)."""
    log.append(values(6))
    failing = Store(fail_after=2, failures=10_000)
    loop = make_loop(log, failing.step, batch_rows=6)
    run_until(loop, lambda: len(failing.batches) >= 3)
    assert not loop.healthy
    assert log.committed() == 0
    assert failing.stored == set(values(2))

    store = Store(stored=set(failing.stored))  # the same (idempotent) store, after the restart
    run_until(make_loop(log, store.step, batch_rows=6), lambda: log.committed() == 6)
    assert store.stored == set(values(6))
    assert [len(b.items) for b in store.batches] == [6]  # the whole batch came again


class Crash(BaseException):
    """The process dies here (not an error the loop may catch and retry)."""


def test_a_crash_after_store_before_commit_redelivers_and_the_idempotent_store_absorbs_it(
    log: Harness,
) -> None:
    """Catches: offsets committed as records are read (auto-commit, or a source that commits its
    read position): after the crash the batch would not come again, and a step that had not
    finished would have lost it. Here the batch must come again, stored twice, kept once."""
    log.append(values(5))
    store = Store()

    def die(offsets: Any) -> None:
        raise Crash

    crashing = make_loop(log, store.step, batch_rows=3, commit=die)
    with pytest.raises(Crash):
        crashing.run(threading.Event())
    assert store.stored == set(values(3))
    assert log.committed() == 0

    run_until(make_loop(log, store.step, batch_rows=3), lambda: log.committed() == 5)
    assert store.stored == set(values(5))
    assert [store.seen[v] for v in values(5)] == [2, 2, 2, 1, 1]


def test_stopping_with_a_batch_not_yet_due_leaves_it_uncommitted_for_the_next_reader(
    log: Harness,
) -> None:
    """Catches: a loop that commits a batch it polled but never stored when it stops."""
    log.append(values(3))
    store = Store()
    loop = make_loop(log, store.step, batch_rows=100, batch_seconds=3600)
    run_until(loop, lambda: loop.held.records == 3)
    assert store.batches == [] and log.committed() == 0

    later = Store()
    run_until(make_loop(log, later.step, batch_rows=3), lambda: log.committed() == 3)
    assert later.stored == set(values(3))


def test_flush_raises_the_steps_failure_and_keeps_the_batch_for_the_next_call(
    log: Harness,
) -> None:
    """The embedded processor's `process_batch`. Catches: a failed flush that drops its batch
    (the records would only come back after a restart) or commits it."""
    log.append(values(3))
    store = Store(fail_after=1, failures=1)
    loop = make_loop(log, store.step, batch_rows=10)
    deadline = time.monotonic() + 10
    while loop.held.records < 3 and time.monotonic() < deadline:
        loop.poll(timeout_s=0.2)
    with pytest.raises(ConnectionError):
        loop.flush()
    assert log.committed() == 0 and not loop.healthy
    assert loop.flush() == 3
    assert wait_committed(log, 3) == 3 and store.stored == set(values(3))
    assert loop.flush() == 0  # nothing held: nothing run, nothing committed
