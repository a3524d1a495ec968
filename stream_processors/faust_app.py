"""The faust app: the two judging steps of core.judge, each on its own key, with faust tables.

    raw (key: submission id) --assess--> assessed (key: device) --settle--> judged --> sink

`assess` needs only what is known about one submission id, so it runs where raw is partitioned by
submission id, with a table of fingerprints seen per id. `settle_respondent` needs only what is
known about one device, so its input is re-keyed by device and it keeps a table of each device's
first accepted submission. Tables live in RocksDB (`settings.table_store`, default
`rocksdb://`): one database per table partition under this worker's own directory
(stream_processors.table_dir), memory bounded by `_BoundedRocksDBOptions`; the changelog topics
are the tables' truth, the databases a cache of them that survives restarts (faust replays only
what a changelog gained since the offset kept in each database). With `memory://` the tables
are rebuilt from the changelogs at every start and grow with the campaign.

Each agent works in batches (`stream.noack_take`: up to BATCH_EVENTS records or BATCH_WITHIN_S): it
judges the batch with the core, sends one batch record per target partition (faust_records), and
acks the batch's events only once Kafka has every output record and every changelog record of the
batch's table writes (acks=all), in offset order (`_ack_when_delivered`). faust commits, per
partition, the first run of consecutive acked offsets, after `producer.flush()`
(faust/transport/consumer.py `_commit_offsets`), so nothing committed lacks its outputs. The
changelog wait is ours: faust's own flush of its send_soon buffer gives up after 0.1 s without
progress (`ProducerBuffer.flush_atmost`). A failed send stops the process (`_StopOnSendError`,
`_stop_uncommitted`) before anything more is acked.

Delivery is at least once: after a crash, records are judged again; judging is deterministic and
both steps always emit, even for a resend, so a redelivered record yields the identical verdict,
which the idempotent sink drops. Skipping resends here would lose a verdict whose first emission
died with the crash while its table update survived.

Table writes that outlive a crash. A write reaches the table (RocksDB, written at once) before
its changelog record reaches Kafka, and a batch is acked only after both; so after a SIGKILL the
restarted worker (same instance, same databases) may hold writes of records it will be handed
again, whether or not their changelog records made it (with `memory://` the same happens when
the changelog record made it but the commit did not). Judging such a record again against the
table that already holds its own write yields the same verdict:
- assess: the record's fingerprint is already among the id's fingerprints, so it is a resend
  (no new write), and `first_of_id` (the first fingerprint stored is the record's own) and so
  duplicate_submission are as the first time: the stored order is the order the records were
  judged in, and a redelivery keeps that order.
- settle: a device's first accepted submission is the record's own id, so `settle_respondent`
  leaves the verdict (and the table) as it was.
A write from a record later in the same uncommitted stretch is seen too: for assess that never
changes an earlier record's verdict (fingerprints are per id, in judging order); for settle, a
*rejected* record of the same device that precedes the device's first accepted one gets
duplicate_respondent added on redelivery (status and counts unchanged, the record stays
rejected). tests/stream_processors/test_table_redelivery.py checks all of this against the core.
"""

from __future__ import annotations

import asyncio
import logging
import os
import weakref
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, cast

import faust
from faust.stores.rocksdb import RocksDBOptions
from faust.streams import _current_event
from faust.types import RecordMetadata

from core.judge import assess, device_key, settle_respondent
from core.registry import Registry
from schemas.events import SubmissionReceived, encode_event
from schemas.settings import Settings
from stream_processors import metrics
from stream_processors.faust_records import (
    pack_by_partition,
    position,
    read_judged,
    read_received,
    received_key,
    submission_key,
    unpack,
)
from stream_processors.faust_topology import DEVICES_TABLE, FINGERPRINTS_TABLE, Topology
from stream_processors.table_dir import claim_worker_dir

log = logging.getLogger(__name__)

# An agent takes up to BATCH_EVENTS buffered records, or what came within BATCH_WITHIN_S, judges
# them together and sends one batch record per target partition. The wait bounds the latency a
# batch adds at low rates; at high rates batches fill first.
BATCH_EVENTS = 1000
BATCH_WITHIN_S = 0.02

# What a step makes of a batch: (key, value) records for the next topic, and the futures of the
# table writes' changelog records.
Outputs = tuple[list[tuple[bytes, bytes]], list[Awaitable[Any]]]


# RocksDB memory, per worker process, whatever the number of table partitions it holds (two
# tables x up to raw_partitions databases). faust's defaults give every database its own block
# cache (2 GiB capacity) and up to 3 x 64 MiB of memtables, and keep every SST file's index and
# bloom filter outside any cache, so a worker's memory grew with its partitions and its data.
# Here all databases share one LRU cache that also holds the index and filter blocks and is
# charged for the memtables (a WriteBufferManager costed to it), so RocksDB's memory stays near
# TABLE_CACHE_BYTES. Small memtables: a worker writes ~2 small records per event, and a flush of
# a 4 MiB memtable is cheap; lookups that miss the cache read SST blocks through the OS page cache.
TABLE_CACHE_BYTES = 32 * 1024 * 1024
TABLE_MEMTABLES_BYTES = 16 * 1024 * 1024  # all memtables, counted in TABLE_CACHE_BYTES
TABLE_WRITE_BUFFER_BYTES = 4 * 1024 * 1024  # one memtable of one database
TABLE_MAX_WRITE_BUFFERS = 2
_shared: dict[str, Any] = {}


class _BoundedRocksDBOptions(RocksDBOptions):
    """faust's RocksDB options (rocksdict) with one shared, bounded cache for all databases."""

    def as_options(self) -> Any:
        import rocksdict

        if "cache" not in _shared:
            cache = rocksdict.Cache(TABLE_CACHE_BYTES)
            _shared["cache"] = cache
            manager = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache
            _shared["write_buffers"] = manager(TABLE_MEMTABLES_BYTES, False, cache)
        options = rocksdict.Options(raw_mode=True)
        options.create_if_missing(True)
        if self.max_open_files is not None:
            options.set_max_open_files(self.max_open_files)
        options.set_write_buffer_size(self.write_buffer_size)
        options.set_max_write_buffer_number(self.max_write_buffer_number)
        options.set_target_file_size_base(self.target_file_size_base)
        options.set_write_buffer_manager(_shared["write_buffers"])
        # RocksDB's info LOG per database: a few small files, not one more per restart.
        options.set_max_log_file_size(1024 * 1024)
        options.set_keep_log_file_num(2)
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(10, block_based=False)
        table.set_block_cache(_shared["cache"])
        table.set_cache_index_and_filter_blocks(True)
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        return options


def _bounded_rocksdb(table: Any) -> None:
    """Give a table's RocksDB store the bounded options (before any database is opened)."""
    store = table.data
    if hasattr(store, "rocksdb_options"):
        if not store.use_rocksdict:
            raise RuntimeError("rocksdb:// tables need the rocksdict package (pyproject.toml)")
        store.rocksdb_options = _BoundedRocksDBOptions(
            write_buffer_size=TABLE_WRITE_BUFFER_BYTES,
            max_write_buffer_number=TABLE_MAX_WRITE_BUFFERS,
            block_cache_size=TABLE_CACHE_BYTES,
        )


def _stop_uncommitted(what: str, exc: BaseException) -> NoReturn:
    """Exit at once, committing nothing more: the restarted worker takes the record again.

    faust acks a record whose agent raised (and commits it), and only logs a failed send (then
    commits the source offset anyway); either would drop a verdict without a trace.
    """
    log.critical("%s failed (%r); stopping without committing", what, exc)
    logging.shutdown()
    os._exit(70)


class _StopOnSendError(faust.Sensor):
    def on_send_error(self, producer: Any, exc: BaseException, state: Any) -> None:
        _stop_uncommitted("writing a verdict to Kafka", exc)


def build_app(
    settings: Settings,
    registry: Registry,
    registry_synced_after: Callable[[float], Awaitable[None]],
    *,
    replication: int = 1,
    instance_id: str | None = None,
    datadir: Path | None = None,
) -> faust.App:
    """The app, its topics, tables and agents; `registry_synced_after` is the freshness wait.

    `datadir`: this worker's own directory (stream_processors.table_dir); by default the app
    claims it itself (and holds its lock until the process ends).
    """
    topology = Topology.of(settings)
    if datadir is None:
        claimed = claim_worker_dir(settings.data_dir, topology.app_id, instance_id)
        _claimed.append(claimed)
        datadir = claimed.path
    app = faust.App(
        topology.app_id,
        broker=[f"kafka://{host}" for host in settings.kafka_bootstrap.split(",")],
        store=settings.table_store,
        # The tables (and faust's metadata) on disk: this worker's own directory under the data
        # dir, never the working directory, never another worker's.
        datadir=str(datadir),
        web_enabled=False,
        topic_partitions=topology.partitions,
        topic_replication_factor=replication,
        table_standby_replicas=0,
        producer_acks=-1,
        producer_linger=0.005,
        producer_max_batch_size=256 * 1024,
        consumer_auto_offset_reset="earliest",
        # Smaller fetches per partition than aiokafka's 1 MiB: faust hands each fetch's records
        # to the streams one by one before it fetches again, so with 1 MiB a raw backlog (8 x
        # ~1,500 records) held the assessed records back for seconds (settle starved while
        # assess caught up); 64 KiB capped a steady flow (~100 raw records per partition per
        # fetch round). Batch records stay well under this (faust_records).
        consumer_max_fetch_size=256 * 1024,
        # Short timeouts: a worker that dies (or is restarted) hands its partitions over in
        # seconds, not minutes. Static membership (instance_id) makes a restart seamless.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=20.0,
        broker_commit_interval=1.0,
        consumer_group_instance_id=instance_id,
        # On stop and on rebalance, finish every record already taken before committing: a
        # record cancelled half-way would otherwise be acked (and committed) without its output.
        stream_wait_empty=True,
        key_serializer="raw",
        value_serializer="raw",
    )
    app.sensors.add(_StopOnSendError())

    def topic(name: str) -> faust.TopicT:
        return app.topic(name, key_type=bytes, value_type=bytes, partitions=topology.partitions)

    raw, assessed, judged = topic(topology.raw), topic(topology.assessed), topic(topology.judged)
    # Keys are str; json (not raw) so they come back as str when a table is rebuilt.
    json_schema: faust.Schema[str, Any] = faust.Schema(
        key_serializer="json", value_serializer="json"
    )
    fingerprints = app.Table(
        FINGERPRINTS_TABLE, default=None, partitions=topology.partitions, schema=json_schema
    )
    devices = app.Table(
        DEVICES_TABLE, default=None, partitions=topology.partitions, schema=json_schema
    )
    for table in (fingerprints, devices):
        _bounded_rocksdb(table)
    hash_key = settings.hash_key
    partitions = topology.partitions

    async def assess_batch(events: Sequence[faust.EventT[bytes]]) -> Outputs:
        taken: list[tuple[faust.EventT[bytes], str, SubmissionReceived]] = []
        for event in events:
            where = position(event.message.partition, event.message.offset)
            received = read_received(event.value, where)
            if received is not None:
                taken.append((event, where, received))
        if not taken:
            return [], []
        # One wait for the batch: the registry is then synced past every record's receive time.
        await registry_synced_after(max(r.received_at.timestamp() for _, _, r in taken))
        out: list[tuple[bytes, bytes]] = []
        written: list[Awaitable[Any]] = []
        for event, where, received in taken:
            key = received_key(received)
            _as_current(event)  # a RocksDB table reads the event's partition's database
            prior: tuple[str, ...] = tuple(fingerprints.get(key) or ())
            assessment = assess(received, where, registry, prior, hash_key)
            if assessment.fingerprints != prior:
                written.append(_table_set(fingerprints, key, list(assessment.fingerprints), event))
            if assessment.resend:
                metrics.RESENDS.inc()
            out_key = device_key(assessment.judged) or key
            out.append((out_key.encode(), encode_event(assessment.judged)))
        return out, written

    async def settle_batch(events: Sequence[faust.EventT[bytes]]) -> Outputs:
        out: list[tuple[bytes, bytes]] = []
        written: list[Awaitable[Any]] = []
        for event in events:
            where = position(event.message.partition, event.message.offset)
            # Every device in the record hashes to the record's partition.
            for value in unpack(event.value, where):
                verdict = read_judged(value, where)
                if verdict is None:
                    continue
                dk = device_key(verdict)
                _as_current(event)  # a RocksDB table reads the event's partition's database
                first = devices.get(dk) if dk else None
                final, first_after = settle_respondent(verdict, first)
                if dk and first_after is not None and first_after != first:
                    written.append(_table_set(devices, dk, first_after, event))
                key = submission_key(final.campaign, final.submission_id)
                out.append((key.encode(), encode_event(final)))
        return out, written

    def agent(
        step: Callable[[Sequence[faust.EventT[bytes]]], Awaitable[Outputs]],
        target: faust.TopicT,
        name: str,
    ) -> Any:
        async def run(stream: faust.StreamT[bytes]) -> None:
            # noack_take hands over buffered events without acking them: an event is acked (and
            # so becomes committable) only once every output of its batch is in Kafka, and a
            # batch interrupted in any way (error, cancellation, SIGKILL) is never acked.
            # (StreamT does not declare noack_take; the agent's stream is a faust.Stream.)
            concrete = cast("faust.Stream[bytes]", stream)
            acked: asyncio.Future[None] | None = None
            async for taken in concrete.noack_take(BATCH_EVENTS, within=BATCH_WITHIN_S):
                events = cast(Sequence[faust.EventT[bytes]], taken)
                first = events[0].message
                what = f"{name} of {len(events)} records from {first.tp}:{first.offset}"
                try:
                    outputs, written = await step(events)
                    sent = await _send(target, pack_by_partition(outputs, partitions))
                    deliveries = [*sent, *written]
                except Exception as exc:
                    _stop_uncommitted(what, exc)
                # The next batch is judged while this one's records travel to the broker.
                acked = asyncio.ensure_future(
                    _ack_when_delivered(concrete, events, deliveries, acked, what)
                )
            if acked is not None:
                await acked

        return run

    app.agent(raw, name="assess")(agent(assess_batch, assessed, "assess"))
    app.agent(assessed, name="settle")(agent(settle_batch, judged, "settle"))
    return app


# Worker directories claimed by build_app itself: their locks last as long as the process.
_claimed: list[Any] = []


def _table_set(table: Any, key: str, value: Any, event: faust.EventT[bytes]) -> Awaitable[Any]:
    """`table[key] = value`, returning the future of its changelog record.

    faust's own write (`Table.on_key_set`) sends the changelog record through the producer's
    send_soon buffer and forgets it; before committing, faust flushes that buffer with
    `ProducerBuffer.flush_atmost`, which gives up once no record went out for 0.1 s (a busy
    broker), so an offset could be committed while its changelog record still waited (lost with
    a SIGKILL: a later duplicate would then go unseen). The batch is acked only once these
    futures are done, i.e. the changelog records are in Kafka too. The record goes to the source
    record's partition, as faust's own write would send it.
    """
    _as_current(event)  # what faust (and a RocksDB store) reads the partition from
    table.data[key] = value
    return cast(Awaitable[Any], table.send_changelog(event.message.partition, key, value))


async def _send(
    target: faust.TopicT, records: list[tuple[int, bytes, bytes]]
) -> list[Awaitable[RecordMetadata]]:
    """Hand the batch records to the producer; returns what resolves once Kafka has each one."""
    return [
        await target.send(key=key, value=value, partition=partition)
        for partition, key, value in records
    ]


async def _ack_when_delivered(
    stream: faust.Stream[bytes],
    events: Sequence[faust.EventT[bytes]],
    deliveries: list[Awaitable[Any]],
    previous: asyncio.Future[None] | None,
    what: str,
) -> None:
    """Ack a batch's events once Kafka has every output (acks=all) and the batch before it is
    acked: faust commits the first run of consecutive acked offsets of a partition, so acks
    must come in offset order for that run to mean "all done". A failed delivery stops the
    worker; a cancelled predecessor (the worker stopping) leaves this batch unacked too."""
    try:
        for delivery in deliveries:
            await delivery
        if previous is not None:
            await previous
    except Exception as exc:
        _stop_uncommitted(f"sending the outputs of {what}", exc)
    for event in events:
        await stream.ack(event)


def _as_current(event: faust.EventT[bytes]) -> None:
    """Make `event` faust's current event in this task, as stream iteration would.

    A table write sends its changelog record to the current event's partition, and a RocksDB
    store reads and writes that partition's database (a read with another event current would
    look in the wrong database and miss). noack_take fills its buffer in another task, so
    in the agent's task no event is current unless set here, before each write.
    """
    _current_event.set(weakref.ref(event))
