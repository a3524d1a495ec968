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

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from core.anomaly import AnomalyEngine
from core.anomaly.ports import FindingStore
from schemas.events import SubmissionJudged
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


class FindingsConsumer:
    def __init__(
        self, consumer: KafkaConsumer, store: FindingStore, engine: AnomalyEngine, *,
        batch_rows: int = 5000, batch_seconds: float = 1.0,
    ) -> None:
        self.consumer = consumer
        self.step = FindingsStep(store, engine)
        self.batch_rows = batch_rows
        self.batch_seconds = batch_seconds
        self.observed = 0

    def _store(self, rows: list[SubmissionJudged], stop: threading.Event) -> bool:
        """Detect, then store the findings, retrying the store with capped backoff."""
        started = time.perf_counter()
        found = self.step.engine.observe_many(rows)
        delay = 0.2
        while found:
            try:
                self.step.store.insert_findings(found)
                break
            except Exception:
                log.exception("store refused %d findings; retrying in %.1f s", len(found), delay)
                FINDINGS_FAILURES.inc()
                if stop.wait(delay):
                    return False
                delay = min(delay * 2, 30.0)
        count_findings(found, time.perf_counter() - started)
        return True

    def run(self, stop: threading.Event) -> None:
        """Until `stop`: a batch of verdicts (in partition order; partitions interleaved as
        polled), its findings stored, then its offsets committed."""
        while not stop.is_set():
            polled = self.consumer.poll(
                timeout_ms=int(self.batch_seconds * 1000), max_records=self.batch_rows
            )
            rows: list[SubmissionJudged] = []
            offsets: dict[TopicPartition, int] = {}
            for tp, records in sorted(polled.items(), key=lambda kv: kv[0].partition):
                for record in records:
                    verdict = read_judged(record.value, position(record.partition, record.offset))
                    if verdict is not None:
                        rows.append(verdict)
                    offsets[tp] = record.offset + 1
            if not offsets:
                continue
            # Event time order within the batch, so windows see sheets as they were received.
            rows.sort(key=lambda r: r.received_at)
            if not self._store(rows, stop):
                return  # stopping while the store is down: nothing is committed
            self.observed += len(rows)
            try:
                self.consumer.commit(
                    {tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()}
                )
            except KafkaError as exc:
                log.warning("findings offsets not committed (%s); they will be read again", exc)
