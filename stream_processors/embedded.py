"""The embedded processor: raw file log -> judge (core) -> store, one batch at a time.

The batching and offset commits are the commit loop's (stream_processors/commit_loop.py): the
step here judges and stores a batch; its offset is committed only after the store has it. A
batch whose insert failed is judged again from what the store holds (the judging memory drops its
per-batch overlay), so nothing judged but not stored comes back as a "resend". After a crash
between insert and commit the batch is read again; its verdicts are already in the store, so they
come out as resends and are not inserted twice.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from core.judge import body_device_key, judge, memory_key
from core.judge_memory import DEFAULT_CAPACITY, BoundedJudgeMemory
from core.ports import Store
from core.registry import Registry
from core.review import ReviewApplier
from eventlog.file_log import FileLog, Record
from eventlog.offsets import OffsetStore
from schemas.events import SubmissionJudged, SubmissionReceived, UnknownEventError, decode_event
from stream_processors import metrics
from stream_processors.commit_loop import Backoff, Batch, CommitLoop
from stream_processors.commit_sources import FileLogSource
from stream_processors.findings import FindingsStep

log = logging.getLogger(__name__)
CONSUMER = "judge"


class EmbeddedProcessor:
    def __init__(
        self,
        raw: FileLog,
        offsets: OffsetStore,
        store: Store,
        registry: Registry,
        *,
        hash_key: str,
        batch_rows: int = 5000,
        min_interval_s: float = 0.2,
        on_judged: Callable[[Sequence[SubmissionJudged]], None] | None = None,
        findings: FindingsStep | None = None,
        memory_capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        self.raw = raw
        self.store = store
        self.registry = registry
        self.hash_key = hash_key
        self.batch_rows = batch_rows
        self.on_judged = on_judged
        self.findings = findings  # anomaly detection over stored verdicts; never changes them
        self.memory = BoundedJudgeMemory(store, capacity=memory_capacity)
        self.reviews = ReviewApplier(store, registry.reviews)
        self.source = FileLogSource(raw, offsets, CONSUMER)
        # A batch closes at batch_rows or min_interval_s after its first record, so light traffic
        # gives the store fewer, larger inserts. A failed insert is retried every second.
        self.loop: CommitLoop[Record] = CommitLoop(
            self.source, self.source.commit, self._step, batch_rows=batch_rows,
            batch_seconds=min_interval_s, backoff=Backoff(1.0, 1.0),
            after_commit=self._committed, name="embedded processor",
        )
        self._stored: list[SubmissionJudged] = []  # the last step's rows, for after_commit
        self._started = 0.0

    @property
    def position(self) -> int:
        """The committed raw offset: everything before it is judged and stored."""
        return self.source.committed

    @property
    def healthy(self) -> bool:
        return self.loop.healthy

    def rebuild_state(self) -> int:
        """Fold every stored verdict's keys into the judging memory; returns how many."""
        n = 0
        for row in self.store.iter_judge_memory():
            self.memory.remember(row)
            n += 1
        return n

    def process_batch(self) -> int:
        """Judge and store what is available (up to a batch), without waiting; returns records
        committed. A failure propagates; the batch is kept and judged again by the next call."""
        self.loop.poll(timeout_s=0)
        return self.loop.flush()

    def _step(self, batch: Batch[Record]) -> None:
        """Judge the batch against the store's state and store its verdicts (durable on return)."""
        self._started = time.perf_counter()
        received: list[tuple[int, SubmissionReceived]] = []
        for record in batch.items:
            try:
                event = decode_event(record.value)
            except UnknownEventError as exc:
                # Never silently skipped: it stays in the log for a newer build to replay.
                log.error("raw offset %d cannot be read: %s", record.offset, exc)
                metrics.UNREADABLE.inc()
                continue
            if isinstance(event, SubmissionReceived):
                received.append((record.offset, event))
        # What the store knows of this batch's ids and devices, in one lookup each.
        self.memory.begin_batch(
            (memory_key(event.body) for _, event in received),
            (body_device_key(event.body, self.hash_key) for _, event in received),
        )
        rows: list[SubmissionJudged] = []
        for offset, event in received:
            judged, resend = judge(event, f"0:{offset}", self.registry, self.memory, self.hash_key)
            if resend:
                metrics.RESENDS.inc()
                continue
            rows.append(judged)
        self.store.insert_judged(rows)
        if self.findings is not None and rows:
            self.findings.process(rows)
        self.reviews.after_insert(rows)  # review decisions cover late verdicts too
        self._stored = rows

    def _committed(self, batch: Batch[Record]) -> None:
        rows, self._stored = self._stored, []
        metrics.observe_batch(rows, time.perf_counter() - self._started)
        metrics.LAG.set(self.lag())
        if self.on_judged is not None and rows:
            self.on_judged(rows)

    def lag(self) -> int:
        return self.raw.end_offset - self.position

    async def run(self, stop: asyncio.Event) -> None:
        """The commit loop in a thread of its own until `stop` (the store's calls block)."""
        halt = threading.Event()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()

        def settle(error: BaseException | None) -> None:
            if done.done():
                return
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)

        def body() -> None:
            error: BaseException | None = None
            try:
                self.loop.run(halt)
            except BaseException as exc:  # surfaced on the task, which readiness watches
                error = exc
            loop.call_soon_threadsafe(settle, error)

        threading.Thread(target=body, name="embedded-processor", daemon=True).start()
        stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait([stopping, done], return_when=asyncio.FIRST_COMPLETED)
        finally:
            halt.set()
            stopping.cancel()
        await done
