"""`survey-ingest replay`: re-judge the whole raw log with the current rules into a fresh database.

The same core as every runtime (core.judge.judge with in-memory JudgeState, as the embedded
processor runs it), in-process: no faust. The raw topic is read from the beginning up to the end
offsets taken at the start, and the partitions are merged by the collector's receive time (ties:
partition, offset), so the order is deterministic and the earlier answer of a device is the one
credited, as in the live pipeline.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from kafka import KafkaConsumer, TopicPartition

from core.counting import Count
from core.judge import JudgeState, judge
from core.ports import Store
from core.progress import SILENT, Progress
from core.registry import Registry
from runtime.registry import from_topic
from schemas.events import SubmissionJudged, SubmissionReceived
from schemas.settings import Settings
from storage import open_store
from stream_processors.faust_records import position, read_received
from stream_processors.faust_topology import Topology

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawRecord:
    order: tuple[float, int, int]  # (receive time, partition, offset)
    where: str
    received: SubmissionReceived | None


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def database_of(url: str) -> str:
    return urlsplit(url).path.strip("/") or "default"


def merged_raw(bootstrap: str, topic: str, progress: Progress = SILENT) -> Iterator[RawRecord]:
    """Every raw record up to the end offsets at the start, merged by receive time."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","), group_id=None, enable_auto_commit=False,
        allow_auto_create_topics=False,
    )
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            raise RuntimeError(f"topic {topic} does not exist")
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        progress.stage("replay", sum(end[tp] - consumer.position(tp) for tp in tps), "records")
        buffers: dict[TopicPartition, deque[RawRecord]] = {tp: deque() for tp in tps}
        unread = {tp for tp in tps if consumer.position(tp) < end[tp]}
        while True:
            # Every partition with records left must show its next record before one is chosen.
            # No pause/resume to fetch only those (kafka-python 3.0 stops fetching a resumed
            # partition): the keys spread records evenly, so the others run ahead by a fetch.
            while any(not buffers[tp] for tp in unread):
                for tp, records in consumer.poll(timeout_ms=1000).items():
                    buffers[tp].extend(_raw(r.partition, r.offset, r.value)
                                       for r in records if r.offset < end[tp])
                unread = {tp for tp in unread if consumer.position(tp) < end[tp]}
            heads = [buf for buf in buffers.values() if buf]
            if not heads:
                return
            yield min(heads, key=lambda buf: buf[0].order).popleft()
    finally:
        consumer.close(autocommit=False)


def _raw(partition: int, offset: int, value: bytes) -> RawRecord:
    where = position(partition, offset)
    received = read_received(value, where)
    # Unreadable records sort first; they are only counted and logged.
    at = received.received_at.timestamp() if received is not None else float("-inf")
    return RawRecord((at, partition, offset), where, received)


def rejudge(settings: Settings, registry: Registry, store: Store,
            progress: Progress = SILENT) -> tuple[int, int]:
    """Judges every raw record into `store`; returns (records read, verdicts stored)."""
    state = JudgeState.empty()
    batch: list[SubmissionJudged] = []
    records = stored = 0
    for record in merged_raw(settings.kafka_bootstrap, Topology.of(settings).raw, progress):
        records += 1
        progress.advance()
        if record.received is None:
            continue
        judged, resend = judge(record.received, record.where, registry, state, settings.hash_key)
        if resend:
            continue  # the live sink drops it too: same (campaign, id, fingerprint)
        batch.append(judged)
        if len(batch) >= settings.sink_batch_rows:
            stored += store.insert_judged(batch)
            batch = []
    if batch:
        stored += store.insert_judged(batch)
    # Review decisions are on the registry (read whole before judging): apply them to what was
    # judged, as the live sink and the decisions' publishers did.
    for decision in registry.reviews():
        store.apply_review(decision)
    return records, stored


def _totals(counts: dict[str, Count]) -> dict[str, int]:
    return {"valid": sum(c.valid for c in counts.values()),
            "rejected": sum(c.rejected for c in counts.values()),
            "test": sum(c.test for c in counts.values())}


def replay(settings: Settings, into_database: str | None,
           progress: Progress = SILENT) -> int:
    started = time.monotonic()
    live_db = database_of(settings.clickhouse_url)
    target = into_database or f"{live_db}_replay_{dt.datetime.now(dt.UTC):%Y%m%d%H%M%S}"
    if target == live_db:
        raise SystemExit("replay: --into-database must not be the live database")
    registry = from_topic(settings)
    fresh = open_store(with_database(settings.clickhouse_url, target))
    live = open_store(settings.clickhouse_url)
    try:
        fresh.migrate()
        records, stored = rejudge(settings, registry, fresh, progress)
        differing = 0
        progress.stage("compare", len(registry.campaigns), "campaigns")
        for campaign in sorted(registry.campaigns):
            progress.advance()
            now, before = fresh.unit_counts(campaign), live.unit_counts(campaign)
            units = sorted(u for u in set(now) | set(before)
                           if now.get(u, Count()) != before.get(u, Count()))
            differing += len(units)
            # Every count table (and the review rows) by content hash: a replay of an unchanged
            # log under unchanged rules rebuilds them identically.
            fresh_hashes, live_hashes = fresh.count_hashes(campaign), live.count_hashes(campaign)
            tables = sorted(t for t in fresh_hashes if fresh_hashes[t] != live_hashes.get(t))
            print(json.dumps({"campaign": campaign, "live": _totals(before),
                              "replay": _totals(now), "units_differing": units,
                              "tables_differing": tables}), flush=True)
        print(json.dumps({"database": target, "raw_records": records, "verdicts_stored": stored,
                          "units_differing": differing,
                          "seconds": round(time.monotonic() - started, 1)}), flush=True)
    finally:
        fresh.close()
        live.close()
    return 0
