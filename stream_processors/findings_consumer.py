"""The distributed findings step: verdicts off the judged topic -> anomaly engine -> store.

A plain kafka-python loop, like the sink, and deliberately not part of the judging app: findings
never feed back into verdicts or counts, so they need no place in the judging topology, and a
slow or failing detector must never hold judging up.

One consumer reads every partition of the judged topic (assigned, not subscribed): the detectors
compare a link with its own history and with the rest of the campaign, so they must see all of a
campaign's verdicts, while the judged topic is keyed by submission id. Run one per deployment
(`python -m runtime.distributed.findings`); at ~10 million sheets in ten days that is
~12 verdicts/s on average and a few thousand at a peak, well within one process (see
benchmarks/bench_anomaly.py). Offsets are committed only after the findings of a batch are
stored. The engine's state is in memory: after a restart it starts afresh from the committed
offsets (a window open at the time is seen in part); a replay of the judged topic from the start
reproduces every finding, and the store keeps each (finding_id, revision) once.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from core.anomaly import AnomalyEngine
from core.anomaly.ports import FindingStore
from schemas.events import FindingRaised, SubmissionJudged
from stream_processors.commit_loop import Batch, CommitLoop
from stream_processors.commit_sources import KafkaSource, kafka_commit
from stream_processors.faust_records import position, read_judged
from stream_processors.findings import FINDINGS_FAILURES, FindingsStep, count_findings

log = logging.getLogger(__name__)


def findings_consumer(bootstrap: str, topic: str, group: str, batch_rows: int) -> KafkaConsumer:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        group_id=group,  # only to keep committed offsets; partitions are assigned, not balanced
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=batch_rows,
        allow_auto_create_topics=False,
    )
    partitions = None
    deadline = time.monotonic() + 30
    while not partitions:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            if time.monotonic() > deadline:
                consumer.close()
                raise RuntimeError(f"topic {topic} has no partitions (run migrate first)")
            time.sleep(0.5)
    consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
    return consumer


def read_verdict(record: Any) -> list[SubmissionJudged]:
    verdict = read_judged(record.value, position(record.partition, record.offset))
    return [] if verdict is None else [verdict]


class FindingsConsumer:
    def __init__(
        self, consumer: KafkaConsumer, store: FindingStore, engine: AnomalyEngine, *,
        batch_rows: int = 5000, batch_seconds: float = 1.0,
    ) -> None:
        self.consumer = consumer
        self.step = FindingsStep(store, engine)
        self.observed = 0
        self.loop: CommitLoop[SubmissionJudged] = CommitLoop(
            KafkaSource(consumer, read_verdict), kafka_commit(consumer, "findings offsets"),
            self._store, batch_rows=batch_rows, batch_seconds=batch_seconds,
            after_commit=self._committed, name="findings consumer",
        )
        # Detection moves the engine's state, so it runs once per batch; only storing is retried.
        self._detected: tuple[Batch[SubmissionJudged], list[FindingRaised], float] | None = None

    def _store(self, batch: Batch[SubmissionJudged]) -> None:
        """Detect (once per batch), then store the findings; the loop retries until stored."""
        if self._detected is None or self._detected[0] is not batch:
            started = time.perf_counter()
            # Event time order within the batch, so windows see sheets as they were received.
            rows = sorted(batch.items, key=lambda r: r.received_at)
            self._detected = (batch, self.step.engine.observe_many(rows), started)
        _, found, started = self._detected
        if found:
            try:
                self.step.store.insert_findings(found)
            except Exception:
                FINDINGS_FAILURES.inc()
                raise
        count_findings(found, time.perf_counter() - started)
        self._detected = None

    def _committed(self, batch: Batch[SubmissionJudged]) -> None:
        self.observed += len(batch.items)

    def run(self, stop: threading.Event) -> None:
        """Until `stop`: a batch of verdicts (partitions interleaved as polled), its findings
        stored, then its offsets committed."""
        self.loop.run(stop)
