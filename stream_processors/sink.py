"""The ClickHouse sink: verdicts from the judged topic into the store, in batches, offsets after.

A plain kafka-python consumer loop rather than a faust agent with `stream.take()`: take() acks
its buffered events in a `finally`, which also runs when the agent is cancelled mid-batch (a
worker stopped while ClickHouse is down), and faust commits acked offsets as it stops, so rows
could be committed without being stored. Here the committed offsets are exactly those of records
whose rows `insert_judged` returned for. The store is idempotent by (campaign, submission_id,
fingerprint), so whatever is read twice (a crash between insert and commit, a rebalance, a
redelivered verdict upstream) is stored once: that is what makes counts exact. Batching, retries
and commits are the commit loop's (stream_processors/commit_loop.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from kafka import KafkaConsumer

from core.ports import Store
from schemas.events import SubmissionJudged
from stream_processors import metrics
from stream_processors.commit_loop import Backoff, Batch, CommitLoop
from stream_processors.commit_sources import KafkaSource, kafka_commit
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


def read_verdicts(record: Any) -> list[SubmissionJudged]:
    """The verdicts a judged-topic record holds (a batch record, or one plain event)."""
    where = position(record.partition, record.offset)
    return [v for v in (read_judged(value, where) for value in unpack(record.value, where))
            if v is not None]


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
        self.loop: CommitLoop[SubmissionJudged] = CommitLoop(
            KafkaSource(consumer, read_verdicts), kafka_commit(consumer), self._step,
            batch_rows=batch_rows, batch_seconds=batch_seconds,
            backoff=Backoff(0.2, max_backoff_s), name="ClickHouse sink",
        )

    @property
    def healthy(self) -> bool:
        """False from a refused insert until an insert goes through again."""
        return self.loop.healthy

    def run(self, stop: threading.Event) -> None:
        """Until `stop`: fill a batch (by size or time), store it, then commit its offsets.
        Stopping while the store is down commits nothing."""
        self.loop.run(stop)

    def _step(self, batch: Batch[SubmissionJudged]) -> None:
        """Insert (idempotent), then the review decisions; retried by the loop until it returns."""
        started = time.perf_counter()
        self.store.insert_judged(batch.items)
        if self.after_insert is not None:
            self.after_insert(batch.items)
        metrics.observe_batch(batch.items, time.perf_counter() - started)
