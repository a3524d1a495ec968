"""PROPOSAL for eventlog/kafka_log.py: the collector's raw log on aiokafka instead of kafka-python.

Same contract as KafkaRawLog: `append` returns only once the broker acknowledged the write with
acks=all (idempotent producer), anything else raises LogUnavailableError (the collector answers
503). What changes is where the work happens: kafka-python builds record batches and their CRC32C
in pure Python on a sender thread and hands every acknowledgement back to the event loop through
call_soon_threadsafe (a self-pipe write per record); aiokafka builds batches in C (its
_crecords extension) on the event loop itself and resolves a plain future. The health probe
stays the kafka-python consumer thread it was. Measured in benchmarks.bench_collector
(target collector_kafka_2w+aiokafka).

Partitioning is unchanged: both clients hash the key with the Java client's murmur2, so a
submission id lands on the same raw partition either way.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from core.ports import LogUnavailableError
from eventlog.kafka_log import DELIVERY_TIMEOUT_MS, REQUEST_TIMEOUT_MS

log = logging.getLogger(__name__)


class AIOKafkaRawLog:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        probe_interval_s: float = 2.0,
        producer_overrides: dict[str, Any] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.probe_interval_s = probe_interval_s
        self._overrides = producer_overrides or {}
        self._producer: Any = None
        self._starting: asyncio.Future[Any] | None = None
        self._topic_ok = False
        self._last_probe_ok = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._probe, name="raw-log", daemon=True)
        self._thread.start()

    async def _ensure(self) -> Any:
        # The producer belongs to the serving loop, which does not exist yet in __init__.
        if self._producer is None:
            if self._starting is None:
                self._starting = asyncio.ensure_future(self._start())
            try:
                await asyncio.shield(self._starting)
            except Exception:
                self._starting = None
                raise
        return self._producer

    async def _start(self) -> Any:
        from aiokafka import AIOKafkaProducer

        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": 5,
            "max_batch_size": 256 * 1024,
            "request_timeout_ms": REQUEST_TIMEOUT_MS,
        }
        config.update(self._overrides)
        producer = AIOKafkaProducer(**config)
        await producer.start()
        self._producer = producer
        return producer

    async def append(self, key: bytes, value: bytes) -> None:
        if not self._topic_ok:
            raise LogUnavailableError("the raw topic is not known to exist yet")
        try:
            producer = await self._ensure()
            sent = await producer.send(self.topic, value=value, key=key)
            await asyncio.wait_for(sent, (DELIVERY_TIMEOUT_MS + REQUEST_TIMEOUT_MS) / 1000)
        except TimeoutError as exc:
            raise LogUnavailableError("Kafka did not acknowledge the write in time") from exc
        except Exception as exc:  # aiokafka's KafkaError and connection errors alike
            raise LogUnavailableError(f"Kafka did not take the write: {exc!r}") from exc

    def healthy(self) -> bool:
        fresh = time.monotonic() - self._last_probe_ok < 2.5 * self.probe_interval_s
        return self._topic_ok and fresh

    def close(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _probe(self) -> None:
        probe: KafkaConsumer | None = None
        while not self._stop.is_set():
            try:
                if probe is None:
                    probe = KafkaConsumer(
                        bootstrap_servers=self.bootstrap.split(","),
                        group_id=None,
                        request_timeout_ms=REQUEST_TIMEOUT_MS,
                        bootstrap_timeout_ms=5_000,
                        enable_auto_commit=False,
                    )
                partitions = probe.partitions_for_topic(self.topic) or ()
                if not partitions:
                    raise KafkaError(f"topic {self.topic} does not exist (run migrate)")
                probe.end_offsets([TopicPartition(self.topic, p) for p in partitions])
                self._topic_ok = True
                self._last_probe_ok = time.monotonic()
            except Exception as exc:  # any failure only means "not healthy now"
                log.warning("raw log %s not reachable: %s", self.topic, exc)
            self._stop.wait(self.probe_interval_s)
        if probe is not None:
            probe.close()
