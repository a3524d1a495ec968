"""Reading events off the distributed topics: one decoder per step, shared by faust, sink, replay.

A record this build cannot read is never guessed at and never stops the pipeline: it is logged and
counted, and it stays in the log for a newer build to replay (the raw log is the source of truth).

The internal topics (assessed, judged) carry *batch records*: many encoded events framed in one
Kafka record, all of whose keys fall in the record's partition. One record per target partition
per batch instead of one per event is what keeps the worker's produce cost off the per-event path.
A plain (unframed) event is still read, so records written by an older worker are not lost.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterable, Iterator

from aiokafka.partitioner import murmur2

from schemas.events import SubmissionJudged, SubmissionReceived, UnknownEventError, decode_event
from stream_processors import metrics

log = logging.getLogger(__name__)


def position(partition: int, offset: int) -> str:
    """Where a record was read, as verdicts carry it ("partition:offset")."""
    return f"{partition}:{offset}"


def submission_key(campaign: str, submission_id: str) -> str:
    """The key everything about one submission id is kept under (the same as core.judge's)."""
    return f"{campaign}\x1f{submission_id}"


def received_key(received: SubmissionReceived) -> str:
    body = received.body
    return submission_key(str(body.get("campaign", "")), str(body.get("submission_id", "")))


def read_received(value: bytes, where: str) -> SubmissionReceived | None:
    event = _read(value, where)
    return event if isinstance(event, SubmissionReceived) else None


def read_judged(value: bytes, where: str) -> SubmissionJudged | None:
    event = _read(value, where)
    return event if isinstance(event, SubmissionJudged) else None


# A JSON event starts with "{", so a leading NUL can never be mistaken for one.
BATCH_MAGIC = b"\x00sb1"
_LEN = struct.Struct(">I")
# Well under the worker's fetch size per partition (faust_app: 256 KiB). A record larger than
# the fetch size is only returned when it is the first data of a fetch response (KIP-74), so a
# partition holding one could sit unread behind busier ones.
BATCH_RECORD_MAX_BYTES = 48 * 1024


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (Java's, aiokafka's, kafka-python's) picks.

    The device table's changelog partition is the partition its input record was read from, so a
    batch record must land exactly where each of its keys alone would have: co-partitioning.
    """
    return (int(murmur2(key)) & 0x7FFFFFFF) % partitions


def pack_by_partition(
    items: Iterable[tuple[bytes, bytes]], partitions: int, max_bytes: int = BATCH_RECORD_MAX_BYTES
) -> list[tuple[int, bytes, bytes]]:
    """(key, value) pairs -> (partition, key, batch record): each record holds only values whose
    key hashes to its partition, in their original order, and stays under `max_bytes`. The record's
    key is its first item's key, so it also hashes to the record's partition."""
    open_: dict[int, tuple[bytes, list[bytes], int]] = {}
    out: list[tuple[int, bytes, bytes]] = []
    for key, value in items:
        p = partition_for(key, partitions)
        current = open_.get(p)
        if current is not None and current[2] + len(value) + _LEN.size > max_bytes:
            out.append((p, current[0], _frame(current[1])))
            current = None
        if current is None:
            current = (key, [], len(BATCH_MAGIC))
        current[1].append(value)
        open_[p] = (current[0], current[1], current[2] + len(value) + _LEN.size)
    out.extend((p, key, _frame(values)) for p, (key, values, _) in open_.items())
    return out


def _frame(values: list[bytes]) -> bytes:
    parts = [BATCH_MAGIC]
    for v in values:
        parts.append(_LEN.pack(len(v)))
        parts.append(v)
    return b"".join(parts)


def unpack(value: bytes, where: str) -> Iterator[bytes]:
    """The events of a batch record, or the record itself if it is a plain event."""
    if not value.startswith(BATCH_MAGIC):
        yield value
        return
    view = memoryview(value)
    i, end = len(BATCH_MAGIC), len(value)
    while i < end:
        if i + _LEN.size > end:
            break
        (n,) = _LEN.unpack_from(view, i)
        i += _LEN.size
        if i + n > end:
            break
        yield bytes(view[i : i + n])
        i += n
    if i != end:
        # Never written by this code; counted so it is seen, and the rest is left in the log.
        log.error("batch record at %s is truncated at byte %d of %d", where, i, end)
        metrics.UNREADABLE.inc()


def _read(value: bytes, where: str) -> object:
    try:
        return decode_event(value)
    except UnknownEventError as exc:
        log.error("record at %s cannot be read: %s", where, exc)
        metrics.UNREADABLE.inc()
        return None
