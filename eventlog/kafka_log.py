"""The raw log on Kafka: the collector's RawLog adapter over a kafka-python producer.

`append` returns only once the broker acknowledged the write with acks=all; anything else (no
connection yet, a send error, a delivery timeout) raises LogUnavailableError, so the collector
answers 503 and the client retries with the same submission_id. A 202 is never given for a
write the broker did not take.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
        self._last_probe_ok = 0.0
        self._probe_failed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._connect_and_probe, name="raw-log", daemon=True)
        self._thread.start()

    async def append(self, key: bytes, value: bytes) -> None:
        producer = self._producer
        if producer is None or self._probe_failed:
            # Fail fast while the broker is known to be away: the client retries after the
            # Retry-After instead of every request waiting out the delivery timeout. (A probe
            # that is merely slow, on a busy machine, does not count.)
            raise LogUnavailableError("Kafka is not reachable")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        try:
            sent = producer.send(self.topic, value=value, key=key)
        except KafkaError as exc:
            raise LogUnavailableError(f"Kafka refused the write: {exc}") from exc
        # The callbacks run on the producer's sender thread: hand the outcome to our loop.
        sent.add_callback(lambda _metadata: _settle(loop, done, None))
        sent.add_errback(lambda exc: _settle(loop, done, exc))
        try:
            # The producer's delivery timeout ends every send; this is only a backstop.
            await asyncio.wait_for(done, (DELIVERY_TIMEOUT_MS + REQUEST_TIMEOUT_MS) / 1000)
        except TimeoutError as exc:
            raise LogUnavailableError("Kafka did not acknowledge the write in time") from exc

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
                if self._producer is None:
                    producer = KafkaProducer(**producer_config(self.bootstrap))
                    partitions = producer.partitions_for(self.topic)
                    if not partitions:
                        producer.close(timeout=1)
                        raise KafkaError(f"topic {self.topic} does not exist (run migrate)")
                    self._producer = producer
                    log.info("raw log connected: %s (%d partitions)", self.topic, len(partitions))
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
            self._stop.wait(self.probe_interval_s)
        if probe is not None:
            probe.close()


def _settle(
    loop: asyncio.AbstractEventLoop, done: asyncio.Future[None], exc: BaseException | None
) -> None:
    def apply() -> None:
        if done.done():
            return  # the waiter timed out already
        if exc is None:
            done.set_result(None)
        else:
            done.set_exception(LogUnavailableError(f"Kafka did not take the write: {exc!r}"))

    # A closed loop: nobody is waiting for this outcome any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(apply)
