"""The faust app: the two judging steps of core.judge, each on its own key, with faust tables.

    raw (key: submission id) --assess--> assessed (key: device) --settle--> judged --> sink

`assess` needs only what is known about one submission id, so it runs where raw is partitioned by
submission id, with a table of fingerprints seen per id. `settle_respondent` needs only what is
known about one device, so its input is re-keyed by device and it keeps a table of each device's
first accepted submission. Tables live in memory and are rebuilt from their changelog topics.

Delivery is at least once: faust flushes the producer (outputs and changelogs) before committing
source offsets. After a crash, records are judged again; judging is deterministic and both steps
always emit, even for a resend, so a redelivered record yields the identical verdict, which the
idempotent sink drops. Skipping resends here would lose a verdict whose first emission died with
the crash while its table update survived.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn, cast

import faust
from faust.streams import _current_event

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

log = logging.getLogger(__name__)

# An agent takes up to BATCH_EVENTS buffered records, or what came within BATCH_WITHIN_S, judges
# them together and sends one batch record per target partition. The wait bounds the latency a
# batch adds at low rates; at high rates batches fill first.
BATCH_EVENTS = 1000
BATCH_WITHIN_S = 0.02


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
) -> faust.App:
    """The app, its topics, tables and agents; `registry_synced_after` is the freshness wait."""
    topology = Topology.of(settings)
    app = faust.App(
        topology.app_id,
        broker=[f"kafka://{host}" for host in settings.kafka_bootstrap.split(",")],
        store="memory://",
        # faust keeps table metadata on disk; under the data dir, never the working directory.
        datadir=str(settings.data_dir / "faust"),
        web_enabled=False,
        topic_partitions=topology.partitions,
        topic_replication_factor=replication,
        table_standby_replicas=0,
        producer_acks=-1,
        producer_linger=0.005,
        producer_max_batch_size=256 * 1024,
        consumer_auto_offset_reset="earliest",
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
    hash_key = settings.hash_key
    partitions = topology.partitions

    async def assess_batch(events: Sequence[faust.EventT[bytes]]) -> list[tuple[bytes, bytes]]:
        taken: list[tuple[faust.EventT[bytes], str, SubmissionReceived]] = []
        for event in events:
            where = position(event.message.partition, event.message.offset)
            received = read_received(event.value, where)
            if received is not None:
                taken.append((event, where, received))
        if not taken:
            return []
        # One wait for the batch: the registry is then synced past every record's receive time.
        await registry_synced_after(max(r.received_at.timestamp() for _, _, r in taken))
        out: list[tuple[bytes, bytes]] = []
        for event, where, received in taken:
            key = received_key(received)
            prior: tuple[str, ...] = tuple(fingerprints.get(key) or ())
            assessment = assess(received, where, registry, prior, hash_key)
            if assessment.fingerprints != prior:
                _as_current(event)  # the changelog partition is the source record's
                fingerprints[key] = list(assessment.fingerprints)
            if assessment.resend:
                metrics.RESENDS.inc()
            out_key = device_key(assessment.judged) or key
            out.append((out_key.encode(), encode_event(assessment.judged)))
        return out

    async def settle_batch(events: Sequence[faust.EventT[bytes]]) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        for event in events:
            where = position(event.message.partition, event.message.offset)
            _as_current(event)  # every device in the record hashes to the record's partition
            for value in unpack(event.value, where):
                verdict = read_judged(value, where)
                if verdict is None:
                    continue
                dk = device_key(verdict)
                first = devices.get(dk) if dk else None
                final, first_after = settle_respondent(verdict, first)
                if dk and first_after is not None and first_after != first:
                    devices[dk] = first_after
                key = submission_key(final.campaign, final.submission_id)
                out.append((key.encode(), encode_event(final)))
        return out

    def agent(
        step: Callable[[Sequence[faust.EventT[bytes]]], Awaitable[list[tuple[bytes, bytes]]]],
        target: faust.TopicT,
        name: str,
    ) -> Any:
        async def run(stream: faust.StreamT[bytes]) -> None:
            # noack_take hands over buffered events without acking them: an event is acked (and
            # so becomes committable) only below, once every output of its batch is in Kafka.
            # A batch interrupted in any way (error, cancellation, SIGKILL) is never acked.
            # (StreamT does not declare noack_take; the agent's stream is a faust.Stream.)
            concrete = cast("faust.Stream[bytes]", stream)
            batches = concrete.noack_take(BATCH_EVENTS, within=BATCH_WITHIN_S)
            async for taken in batches:
                events = cast(Sequence[faust.EventT[bytes]], taken)
                try:
                    outputs = await step(events)
                    await _send_all(target, pack_by_partition(outputs, partitions))
                except Exception as exc:
                    first = events[0].message
                    _stop_uncommitted(
                        f"{name} of {len(events)} records from {first.tp}:{first.offset}", exc
                    )
                # In offset order per partition: faust commits the first run of consecutive
                # acked offsets, and only acking in order makes that run mean "all done".
                for event in events:
                    await concrete.ack(event)

        return run

    app.agent(raw, name="assess")(agent(assess_batch, assessed, "assess"))
    app.agent(assessed, name="settle")(agent(settle_batch, judged, "settle"))
    return app


async def _send_all(target: faust.TopicT, records: list[tuple[int, bytes, bytes]]) -> None:
    """Send the batch records and wait until Kafka has every one of them (acks=all)."""
    pending = [
        await target.send(key=key, value=value, partition=partition)
        for partition, key, value in records
    ]
    for delivery in pending:
        await delivery


def _as_current(event: faust.EventT[bytes]) -> None:
    """Make `event` faust's current event in this task, as stream iteration would.

    A table write sends its changelog record to the current event's partition (and a RocksDB
    store writes that partition's database). noack_take fills its buffer in another task, so
    in the agent's task no event is current unless set here, before each write.
    """
    _current_event.set(weakref.ref(event))
