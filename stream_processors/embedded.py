"""The embedded processor: raw file log -> judge (core) -> store, one batch at a time.

Offsets are committed only after the store has the batch. After a crash, the batch is read again;
its verdicts are already in the store, and since the judging state is rebuilt from the store at
start-up, they come out as resends and are not inserted twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from core.judge import body_device_key, judge, memory_key
from core.judge_memory import DEFAULT_CAPACITY, BoundedJudgeMemory
from core.ports import Store
from core.registry import Registry
from core.review import ReviewApplier
from eventlog.file_log import FileLog
from eventlog.offsets import OffsetStore
from schemas.events import SubmissionJudged, SubmissionReceived, UnknownEventError, decode_event
from stream_processors import metrics
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
        self.offsets = offsets
        self.store = store
        self.registry = registry
        self.hash_key = hash_key
        self.batch_rows = batch_rows
        self.min_interval_s = min_interval_s
        self.on_judged = on_judged
        self.findings = findings  # anomaly detection over stored verdicts; never changes them
        self.memory = BoundedJudgeMemory(store, capacity=memory_capacity)
        self.reviews = ReviewApplier(store, registry.reviews)
        self.position = offsets.get(CONSUMER)
        self.healthy = True

    def rebuild_state(self) -> int:
        """Fold every stored verdict's keys into the judging memory; returns how many."""
        n = 0
        for row in self.store.iter_judge_memory():
            self.memory.remember(row)
            n += 1
        return n

    def process_batch(self) -> int:
        """Judge and store what is available (up to a batch); returns records consumed."""
        records = self.raw.read(self.position, self.batch_rows)
        if not records:
            return 0
        started = time.perf_counter()
        received: list[tuple[int, SubmissionReceived]] = []
        for record in records:
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
        self.position = records[-1].offset + 1
        self.offsets.commit(CONSUMER, self.position)
        metrics.observe_batch(rows, time.perf_counter() - started)
        if self.on_judged is not None and rows:
            self.on_judged(rows)
        return len(records)

    def lag(self) -> int:
        return self.raw.end_offset - self.position

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                consumed = await asyncio.to_thread(self.process_batch)
                self.healthy = True
            except Exception:
                # The store may be briefly unavailable; nothing was committed, so retry the batch.
                log.exception("processing failed; retrying")
                self.healthy = False
                await asyncio.sleep(1.0)
                continue
            metrics.LAG.set(self.lag())
            if consumed < self.batch_rows:
                # Idle or light traffic: wait for the next record, then a moment for company, so
                # the store gets fewer, larger inserts.
                await self.raw.wait_for(self.position, timeout=0.5)
                await asyncio.sleep(self.min_interval_s)
