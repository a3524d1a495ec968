"""The ClickHouse sink: verdicts from the judged topic into the store, in batches, offsets after.

A plain kafka-python consumer loop rather than a faust agent with `stream.take()`: take() acks
its buffered events in a `finally`, which also runs when the agent is cancelled mid-batch (a
worker stopped while ClickHouse is down), and faust commits acked offsets as it stops, so rows
could be committed without being stored. Here the committed offsets are exactly those of records
whose rows `insert_judged` returned for. The store is idempotent by (campaign, submission_id,
fingerprint), so whatever is read twice (a crash between insert and commit, a rebalance, a
redelivered verdict upstream) is stored once: that is what makes counts exact.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from core.ports import Store
from schemas.events import SubmissionJudged
from stream_processors import metrics
from stream_processors.faust_records import position, read_judged, unpack

log = logging.getLogger(__name__)


def sink_consumer(
    bootstrap: str, topic: str, group: str, batch_rows: int, instance_id: str | None = None
) -> KafkaConsumer:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        group_id=group,
        # Static membership, as for the faust app: a restarted worker takes its partitions back
        # at once instead of after the dead member's session timeout.
        group_instance_id=instance_id,
        enable_auto_commit=False,  # committed by JudgedSink, after the store took the rows
        auto_offset_reset="earliest",
        max_poll_records=batch_rows,
        # A dead worker's partitions move on within seconds.
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
        allow_auto_create_topics=False,
    )
    consumer.subscribe([topic])
    return consumer


class JudgedSink:
    def __init__(
        self,
        consumer: KafkaConsumer,
        store: Store,
        *,
        batch_rows: int,
        batch_seconds: float,
        max_backoff_s: float = 30.0,
        after_insert: Callable[[Sequence[SubmissionJudged]], None] | None = None,
    ) -> None:
        self.consumer = consumer
        self.store = store
        # Runs after each insert, before the commit (review decisions: core.review.ReviewApplier).
        self.after_insert = after_insert
        self.batch_rows = batch_rows
        self.batch_seconds = batch_seconds
        self.max_backoff_s = max_backoff_s
        self.healthy = True
        # Verdicts per record, as last seen (the judged topic carries batch records): polls ask
        # for about as many records as the batch has room for rows.
        self._per_record = 1

    def run(self, stop: threading.Event) -> None:
        """Until `stop`: fill a batch (by size or time), store it, then commit its offsets."""
        rows: list[SubmissionJudged] = []
        offsets: dict[TopicPartition, int] = {}
        taken = 0
        opened: float | None = None  # when the batch's first record arrived
        while not stop.is_set():
            due = self.batch_seconds + (opened if opened is not None else time.monotonic())
            wait_s = due - time.monotonic()
            room = max(1, (self.batch_rows - taken) // self._per_record)
            polled = self.consumer.poll(timeout_ms=max(0, int(wait_s * 1000)), max_records=room)
            for tp, records in polled.items():
                for record in records:
                    where = position(record.partition, record.offset)
                    n = 0
                    for value in unpack(record.value, where):
                        verdict = read_judged(value, where)
                        if verdict is not None:
                            rows.append(verdict)
                        n += 1
                    self._per_record = max(1, n)
                    offsets[tp] = record.offset + 1
                    taken += n
            if taken and opened is None:
                opened = time.monotonic()
            young = opened is None or time.monotonic() - opened < self.batch_seconds
            if young and taken < self.batch_rows:
                continue
            if not self._store(rows, stop):
                return  # stopping while the store is down: nothing is committed
            self._commit(offsets)
            rows, offsets, taken, opened = [], {}, 0, None

    def _store(self, rows: list[SubmissionJudged], stop: threading.Event) -> bool:
        """Insert, retrying with capped exponential backoff; never drops, never gives up."""
        delay = 0.2
        while True:
            started = time.perf_counter()
            try:
                self.store.insert_judged(rows)
                if self.after_insert is not None:
                    self.after_insert(rows)
            except Exception:
                log.exception("store refused %d rows; retrying in %.1f s", len(rows), delay)
                self.healthy = False
                if stop.wait(delay):
                    return False
                delay = min(delay * 2, self.max_backoff_s)
                continue
            self.healthy = True
            metrics.observe_batch(rows, time.perf_counter() - started)
            return True

    def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            self.consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()})
        except KafkaError as exc:
            # A rebalance (or a long store outage that cost the group membership) took the
            # partitions: the rows are stored; their next reader re-inserts them, and the store
            # drops the repeats.
            log.warning("offsets not committed (%s); those records will be read again", exc)
