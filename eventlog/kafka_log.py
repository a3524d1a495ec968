"""The raw log on Kafka: the collector's RawLog adapter over a kafka-python producer.

`append` returns only once the broker acknowledged the write with acks=all; anything else (no
connection yet, a send error, a delivery timeout) raises LogUnavailableError, so the collector
answers 503 and the client retries with the same submission_id. A 202 is never given for a
write the broker did not take.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import struct
import threading
import time
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from core.ports import LogUnavailableError

log = logging.getLogger(__name__)

# Bounded delivery: the producer retries within this window, then the append fails with a 503
# rather than keeping the client (and the collector's in-flight budget) waiting.
DELIVERY_TIMEOUT_MS = 10_000
REQUEST_TIMEOUT_MS = 5_000
# The producer's delivery timeout ends every send; past this an append fails all the same.
BACKSTOP_S = (DELIVERY_TIMEOUT_MS + REQUEST_TIMEOUT_MS) / 1000


def producer_config(bootstrap: str, **overrides: Any) -> dict[str, Any]:
    """The producer settings every writer of a source-of-truth topic uses."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap.split(","),
        "acks": "all",
        # kafka-python 3.x supports idempotence: a retried batch is not written twice.
        "enable_idempotence": True,
        "linger_ms": 5,
        "batch_size": 256 * 1024,
        # None: lz4/zstd need native libraries this build does not ship, and gzip costs more
        # collector CPU than the bandwidth it saves on a LAN (measured in benchmarks/).
        "compression_type": None,
        "delivery_timeout_ms": DELIVERY_TIMEOUT_MS,
        "request_timeout_ms": REQUEST_TIMEOUT_MS,
        # send() may wait this long for topic metadata; the collector only sends once the
        # topic's partitions are known, so this never blocks the event loop in practice.
        "max_block_ms": 2_000,
        "allow_auto_create_topics": False,  # a topic auto-created with defaults is a silent bug
        "bootstrap_timeout_ms": 5_000,
        # Back in service within seconds of the broker's return, not after a 30 s backoff.
        "reconnect_backoff_max_ms": 2_000,
    }
    config.update(overrides)
    return config


class KafkaRawLog:
    """Appends to one topic; connects (and reconnects) in a background thread."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        probe_interval_s: float = 2.0,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.probe_interval_s = probe_interval_s
        self._producer: KafkaProducer | None = None
        # The raw topic's partitions, sorted, as the producer's metadata has them (the probe
        # thread refreshes them: partitions added to the topic are picked up within seconds).
        self._partitions: list[int] | None = None
        self._relay: _AckRelay | None = None
        self._last_probe_ok = 0.0
        self._probe_failed = False
        self._producer_wedged = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._connect_and_probe, name="raw-log", daemon=True)
        self._thread.start()

    async def append(self, key: bytes, value: bytes) -> None:
        producer = self._producer
        partitions = self._partitions
        if producer is None or partitions is None or self._probe_failed:
            # Fail fast while the broker is known to be away: the client retries after the
            # Retry-After instead of every request waiting out the delivery timeout. (A probe
            # that is merely slow, on a busy machine, does not count.)
            raise LogUnavailableError("Kafka is not reachable")
        loop = asyncio.get_running_loop()
        relay = self._relay
        if relay is None or relay.loop is not loop:
            relay = self._relay = _AckRelay(loop)
        done: asyncio.Future[None] = loop.create_future()
        # The partition kafka-python's default partitioner would pick (murmur2 of the key, as
        # Kafka's Java client), computed here at a third of its cost.
        partition = partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
        try:
            sent = producer.send(self.topic, value=value, key=key, partition=partition)
        except (KafkaError, ValueError) as exc:
            raise LogUnavailableError(f"Kafka refused the write: {exc}") from exc
        relay.watch(sent, done)
        try:
            await done
        except LogUnavailableError:
            if self._producer is producer and (not sent.is_done or producer_failed(producer)):
                # Failed by the backstop, not by the producer's own delivery timeout, or by a
                # producer in an error state: it will not take writes again
                # (see _retire_wedged_producer). A write of a producer already replaced says
                # nothing of its successor.
                self._producer_wedged = True
            raise

    def healthy(self) -> bool:
        """Connected, and the raw topic's leaders answered the last probe, recently."""
        window = self.probe_interval_s + REQUEST_TIMEOUT_MS / 1000 + 1.0
        fresh = time.monotonic() - self._last_probe_ok < window
        return self._producer is not None and not self._probe_failed and fresh

    def close(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)
        if self._producer is not None:
            self._producer.flush(timeout=timeout_s)
            self._producer.close(timeout=timeout_s)

    def _connect_and_probe(self) -> None:
        # A collector started while the broker is down must still start, answer 503 and report
        # not-ready; so the (blocking) bootstrap happens here, retried, never in __init__.
        probe: KafkaConsumer | None = None
        while not self._stop.is_set():
            try:
                if self._producer is not None and producer_failed(self._producer):
                    self._producer_wedged = True
                if self._producer_wedged:
                    self._retire_wedged_producer()
                if self._producer is None:
                    producer = KafkaProducer(**producer_config(self.bootstrap))
                    partitions = producer.partitions_for(self.topic)
                    if not partitions:
                        producer.close(timeout=1)
                        raise KafkaError(f"topic {self.topic} does not exist (run migrate)")
                    self._partitions = sorted(partitions)
                    self._producer = producer
                    log.info("raw log connected: %s (%d partitions)", self.topic, len(partitions))
                else:
                    known = self._producer.partitions_for(self.topic)
                    if known:
                        self._partitions = sorted(known)
                if probe is None:
                    probe = KafkaConsumer(
                        bootstrap_servers=self.bootstrap.split(","), group_id=None,
                        request_timeout_ms=REQUEST_TIMEOUT_MS, bootstrap_timeout_ms=5_000,
                        enable_auto_commit=False, reconnect_backoff_max_ms=2_000,
                    )
                # A round trip to every raw partition leader: that is what an append needs.
                partitions = probe.partitions_for_topic(self.topic) or ()
                tps = [TopicPartition(self.topic, p) for p in partitions]
                probe.end_offsets(tps)
                self._last_probe_ok = time.monotonic()
                self._probe_failed = False
            except Exception as exc:  # any failure only means "not healthy now"; keep trying
                log.warning("raw log %s not reachable: %s", self.topic, exc)
                self._probe_failed = True
                # The next probe starts afresh: a consumer that subscribes to nothing fetches a
                # topic's metadata once and never refreshes it, so after the raw partitions'
                # leaders moved (a broker of a cluster lost) it would ask the old leaders for
                # ever, and the collector answer 503 for ever (tests/reliability/
                # test_replicated_kafka.py).
                if probe is not None:
                    with contextlib.suppress(Exception):
                        probe.close()
                    probe = None
            self._stop.wait(self.probe_interval_s)
        if probe is not None:
            probe.close()

    def _retire_wedged_producer(self) -> None:
        """Drops a producer that will not take writes again; the probe loop makes a new one.

        kafka-python's idempotent producer can wedge for good after a broker restart under load
        (tests/reliability/test_broker_restart.py): no acknowledgement and no error any more,
        for any partition, even once the broker is back. And a produce error it cannot retry
        (a record over the topic's max.message.bytes, say) puts it in a fatal state: its sender
        fails every batch from then on (tests/reliability/test_ambiguous_produce.py). Every write
        it still holds was already answered 503, so the clients resend them; a copy that reached
        the log anyway is an identical resend, absorbed downstream."""
        producer, self._producer = self._producer, None
        self._producer_wedged = False
        log.warning("raw log %s: the producer stopped acknowledging writes; replacing it",
                    self.topic)
        if producer is not None:
            with contextlib.suppress(Exception):
                producer.close(timeout=0)


def producer_failed(producer: KafkaProducer) -> bool:
    """The idempotent producer's state machine is in an error state: nothing it is handed will
    be written. (On Kafka >= 2.5 a sequence error is not one: kafka-python bumps the producer
    epoch and carries on; a non-retriable produce error is.)"""
    manager = getattr(producer, "_transaction_manager", None)
    has_error = getattr(manager, "has_error", None)
    return bool(has_error()) if callable(has_error) else False


class _AckRelay:
    """Hands the producer's outcomes (on its sender thread) to the event loop: one wake-up of the
    loop per burst of acknowledgements (a produce response acknowledges a whole batch), not one
    per record; and one backstop sweep a second instead of a timer per append."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._settled: collections.deque[tuple[asyncio.Future[None], object]] = (
            collections.deque()
        )
        self._wake_pending = False
        # (deadline, future) in the order of the appends, so deadlines are in order too.
        self._pending: collections.deque[tuple[float, asyncio.Future[None]]] = (
            collections.deque()
        )
        self._sweeping = False

    def watch(self, sent: Any, done: asyncio.Future[None]) -> None:
        outcome = functools.partial(self._outcome, done)
        sent.add_callback(outcome)
        sent.add_errback(outcome)
        self._pending.append((time.monotonic() + BACKSTOP_S, done))
        if not self._sweeping:
            self._sweeping = True
            self.loop.call_later(1.0, self._sweep)

    def _outcome(self, done: asyncio.Future[None], result: object) -> None:
        """Sender thread: record metadata, or the exception the write failed with."""
        self._settled.append((done, result))
        if not self._wake_pending:
            self._wake_pending = True
            # A closed loop: nobody waits for this outcome any more.
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        # Cleared before draining: an outcome appended from now on schedules a drain of its own.
        self._wake_pending = False
        settled = self._settled
        while settled:
            done, result = settled.popleft()
            if done.done():
                continue  # the backstop failed it already
            if isinstance(result, BaseException):
                done.set_exception(
                    LogUnavailableError(f"Kafka did not take the write: {result!r}")
                )
            else:
                done.set_result(None)

    def _sweep(self) -> None:
        pending = self._pending
        now = time.monotonic()
        while pending and (pending[0][1].done() or pending[0][0] <= now):
            _, done = pending.popleft()
            if not done.done():
                done.set_exception(
                    LogUnavailableError("Kafka did not acknowledge the write in time")
                )
        if pending:
            self.loop.call_later(1.0, self._sweep)
        else:
            self._sweeping = False


_MURMUR_M = 0x5BD1E995
_U32 = 0xFFFFFFFF
_WORDS: dict[int, struct.Struct] = {}


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2, as kafka-python's
    DefaultPartitioner has it), a word at a time instead of a byte at a time."""
    length = len(data)
    h = 0x9747B28C ^ length
    n = length >> 2
    words = _WORDS.get(n)
    if words is None:
        words = _WORDS.setdefault(n, struct.Struct(f"<{n}I"))
    for k in words.unpack_from(data):
        k = (k * _MURMUR_M) & _U32
        k = ((k ^ (k >> 24)) * _MURMUR_M) & _U32
        h = ((h * _MURMUR_M) & _U32) ^ k
    tail = length & 3
    if tail:
        i = n << 2
        if tail == 3:
            h ^= data[i + 2] << 16
        if tail >= 2:
            h ^= data[i + 1] << 8
        h = ((h ^ data[i]) * _MURMUR_M) & _U32
    h = ((h ^ (h >> 13)) * _MURMUR_M) & _U32
    return h ^ (h >> 15)
