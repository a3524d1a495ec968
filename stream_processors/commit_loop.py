"""The one batch/store/commit loop: batch by rows or seconds, run a step, commit the next offset.

Used by the embedded processor (file log), the ClickHouse sink and the findings consumer (Kafka).
The loop owns the mechanics only: filling a batch, retrying its step, committing. What a record
means, what storing it is, and which metrics it feeds belong to the step each user hands it.
Like getsentry/arroyo's strategies, the loop never holds a consumer: it is handed a `Source` to
poll and a `commit` callable (see stream_processors/commit_sources.py for both log kinds).

The contract, for the users of `CommitLoop`:
- **A step returns only once its output is durable.** The loop commits a batch's offsets (the
  *next* offset to read, per partition) only after its step returned; a step that raises has
  committed nothing, and the same `Batch` object is handed to the step again until a call
  returns. A step that must not redo part of its work on a retry (the findings step's detection,
  which moves the engine's state) may key that part on the batch's identity.
- **Redelivery is the recovery.** A batch whose step returned but whose commit did not happen
  (a crash in between, a lost Kafka group membership) is read again by the next reader, which
  starts from the committed offsets. So a step must not assume its records are new: its store
  must absorb a repeat (dedup by id and fingerprint).
- **What a caller must not assume after a return.** `run` returning (on `stop`) does not mean
  everything polled was stored: a batch that was not yet due, or whose step was still failing,
  is dropped uncommitted and read again after a restart. `flush` returning does not mean the
  offsets are durable in the broker: a commit callable may swallow a failure it knows the next
  reader recovers from (the Kafka commit does, after a rebalance). Neither means the step's
  output is visible to readers of the store (that is the store's own contract).
- A commit is cumulative per partition and is never issued for a batch whose step did not return,
  so the committed offset of every partition only ever covers finished work. `after_commit`
  (metrics, live counts) runs once the commit call returned; not when it raised.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

# A poll waits at most this long, so `run` notices its stop even while a long batch fills.
MAX_POLL_S = 1.0

Partition = Hashable  # 0 for the file log; a kafka TopicPartition for Kafka
Commit = Callable[[Mapping[Partition, int]], None]  # partition -> the next offset to read


@dataclass(frozen=True, slots=True)
class Message(Generic[T]):
    """One record of a log: where it was read and the items it holds (a Kafka record on the
    judged topic frames many verdicts; a raw file-log record is one item)."""

    partition: Partition
    offset: int
    items: Sequence[T]


class Source(Protocol[T]):
    """Where a loop reads. `poll` returns the records after those it returned before (in offset
    order per partition), about `max_rows` items at most, once that many are there or `timeout_s`
    has passed (it may return sooner, with fewer). A new Source starts at the committed offsets."""

    def poll(self, max_rows: int, timeout_s: float) -> Sequence[Message[T]]: ...


@dataclass(eq=False)
class Batch(Generic[T]):
    """The records taken since the last commit and the offsets that commit will name."""

    items: list[T] = field(default_factory=list)
    offsets: dict[Partition, int] = field(default_factory=dict)  # the next offset per partition
    records: int = 0
    rows: int = 0
    opened: float = 0.0  # time.monotonic() when its first record arrived

    def add(self, message: Message[T]) -> None:
        if not self.records:
            self.opened = time.monotonic()
        self.items.extend(message.items)
        self.offsets[message.partition] = message.offset + 1
        self.records += 1
        self.rows += max(1, len(message.items))  # a record holding nothing still takes room


@dataclass(frozen=True)
class Backoff:
    """Delay before retrying a failed step: `initial`, doubled each time, capped at `maximum`."""

    initial: float = 0.2
    maximum: float = 30.0

    def next(self, delay: float) -> float:
        return min(delay * 2, self.maximum)


class CommitLoop(Generic[T]):
    """Polls `source` into a batch until it holds `batch_rows` rows or its first record is
    `batch_seconds` old, runs `step` on it (retried with `backoff` while it raises), then calls
    `commit` with its next offsets and `after_commit` with the batch. See the module docstring
    for the contract."""

    def __init__(
        self,
        source: Source[T],
        commit: Commit,
        step: Callable[[Batch[T]], None],
        *,
        batch_rows: int,
        batch_seconds: float,
        backoff: Backoff = Backoff(),
        after_commit: Callable[[Batch[T]], None] | None = None,
        name: str = "commit loop",
    ) -> None:
        if batch_rows <= 0 or batch_seconds < 0:
            raise ValueError("batch_rows must be > 0 and batch_seconds >= 0")
        self.source = source
        self.commit = commit
        self.step = step
        self.batch_rows = batch_rows
        self.batch_seconds = batch_seconds
        self.backoff = backoff
        self.after_commit = after_commit
        self.name = name
        self.healthy = True  # False from a failed step until a step returns again
        self._batch: Batch[T] = Batch()

    @property
    def held(self) -> Batch[T]:
        """The batch polled but not yet committed (empty between batches)."""
        return self._batch

    def poll(self, timeout_s: float | None = None) -> int:
        """Poll once into the held batch, waiting at most until it is due (or `timeout_s`);
        returns the records taken."""
        batch = self._batch
        if timeout_s is None:
            start = batch.opened if batch.records else time.monotonic()
            timeout_s = max(0.0, start + self.batch_seconds - time.monotonic())
            timeout_s = min(timeout_s, MAX_POLL_S)
        room = self.batch_rows - batch.rows
        if room <= 0:
            return 0
        messages = self.source.poll(room, timeout_s)
        for message in messages:
            batch.add(message)
        return len(messages)

    def due(self) -> bool:
        batch = self._batch
        if not batch.records:
            return False
        return (batch.rows >= self.batch_rows
                or time.monotonic() - batch.opened >= self.batch_seconds)

    def flush(self) -> int:
        """Run the step once on the held batch and commit it; returns the records committed
        (0 when nothing is held). A step's exception propagates and the batch stays held."""
        batch = self._batch
        if not batch.records:
            return 0
        try:
            self.step(batch)
        except Exception:
            self.healthy = False
            raise
        self.healthy = True
        self._finish(batch)
        return batch.records

    def run(self, stop: threading.Event) -> None:
        """Until `stop`: fill a batch, store it (retrying), commit it. Returns on `stop`; see the
        module docstring for what is then left uncommitted."""
        while not stop.is_set():
            self.poll()
            if not self.due():
                continue
            if not self._step_until_done(stop):
                return  # stopping while the step fails: nothing is committed
            try:
                self._finish(self._batch)
            except Exception:
                # Stored, maybe not committed: read again after a restart, absorbed by the store.
                log.exception("%s: commit or after-commit failed; uncommitted records will be "
                              "read again", self.name)

    def _step_until_done(self, stop: threading.Event) -> bool:
        batch = self._batch
        delay = self.backoff.initial
        while True:
            try:
                self.step(batch)
            except Exception:
                log.exception("%s: step failed for %d records (%d rows); retrying in %.1f s",
                              self.name, batch.records, batch.rows, delay)
                self.healthy = False
                if stop.wait(delay):
                    return False
                delay = self.backoff.next(delay)
                continue
            self.healthy = True
            return True

    def _finish(self, batch: Batch[T]) -> None:
        # Released before the commit: the step's output is durable, so running it again would
        # only be absorbed. If the commit raises, the next batch's commit covers the partitions
        # it touches; the others are read again after a restart.
        self._batch = Batch()
        self.commit(dict(batch.offsets))
        if self.after_commit is not None:
            self.after_commit(batch)
