"""The registry on Kafka: a follower that folds the registry topic, and the publisher for it.

Every process that needs the registry (collector, worker, API, replay, reconcile) runs a
follower: a background thread that reads the one-partition registry topic from the beginning, in
order, and keeps reading. It also measures how fresh it is: `synced_as_of` is a wall-clock time
before which every registry event is known to be applied, so the worker can wait until its
registry is at least as new as a submission before judging it (a collector may have accepted the
submission for a campaign defined a moment ago).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from core.registry import Registry
from eventlog.kafka_log import producer_config
from schemas.campaign import CampaignDefinition
from schemas.events import (
    AdminAudited,
    CampaignDefined,
    DurationMedianSet,
    LinkIssued,
    LinkRevoked,
    ReviewDecided,
    TokenIssued,
    TokenRevoked,
    UnknownEventError,
    decode_event,
    encode_event,
)

log = logging.getLogger(__name__)


class RegistryFollower:
    def __init__(self, bootstrap: str, topic: str, *, poll_ms: int = 100) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.poll_ms = poll_ms
        self.registry = Registry()
        self.synced_as_of = 0.0  # epoch seconds; see the module docstring
        self._applied = 0  # the next registry offset to apply
        self._last_sync = 0.0  # monotonic time of the last completed sync round
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="registry-follower", daemon=True)

    def start(self) -> RegistryFollower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def ready(self) -> bool:
        """Caught up with the registry topic within the last ten seconds."""
        return self._last_sync > 0 and time.monotonic() - self._last_sync < 10.0

    def wait_ready(self, timeout_s: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._last_sync > 0, timeout_s)

    def wait_applied(self, offset: int, timeout_s: float) -> bool:
        """Block until the event at `offset` is applied here."""
        with self._changed:
            return self._changed.wait_for(lambda: self._applied > offset, timeout_s)

    async def wait_synced_after(self, moment: float) -> None:
        """Wait until every registry event written before `moment` (epoch seconds) is applied."""
        waited = 0.0
        while self.synced_as_of <= moment:
            await asyncio.sleep(0.01)
            waited += 0.01
            if waited >= 10.0:
                log.warning("registry not synced for %.0f s; judging waits for it", waited)
                waited = 0.0

    def _run(self) -> None:
        consumer: KafkaConsumer | None = None
        tp = TopicPartition(self.topic, 0)
        while not self._stop.is_set():
            try:
                if consumer is None:
                    consumer = KafkaConsumer(
                        bootstrap_servers=self.bootstrap.split(","), group_id=None,
                        enable_auto_commit=False, request_timeout_ms=5_000,
                        bootstrap_timeout_ms=5_000, allow_auto_create_topics=False,
                        reconnect_backoff_max_ms=2_000,
                    )
                    consumer.assign([tp])
                    consumer.seek(tp, self._applied)
                self._sync_round(consumer, tp)
            except Exception as exc:  # broker away or topic missing: not ready, keep trying
                log.warning("registry %s not readable: %s", self.topic, exc)
                if consumer is not None:
                    consumer.close()
                    consumer = None
                self._stop.wait(1.0)
        if consumer is not None:
            consumer.close()

    def _sync_round(self, consumer: KafkaConsumer, tp: TopicPartition) -> None:
        started = time.time()
        end = consumer.end_offsets([tp])[tp]
        deadline = time.monotonic() + 10.0
        while self._applied < end and not self._stop.is_set():
            self._apply_all(consumer, tp, consumer.poll(timeout_ms=500))
            if time.monotonic() > deadline:
                # Behind, yet nothing arrives: start again with a fresh consumer.
                raise TimeoutError(f"registry stuck at offset {self._applied} of {end}")
        with self._changed:
            self.synced_as_of = started
            self._last_sync = time.monotonic()
            self._changed.notify_all()
        # The idle wait doubles as the fast path for new events.
        self._apply_all(consumer, tp, consumer.poll(timeout_ms=self.poll_ms))

    def _apply_all(
        self,
        consumer: KafkaConsumer,
        tp: TopicPartition,
        batch: dict[TopicPartition, list[ConsumerRecord]],
    ) -> None:
        for records in batch.values():
            for record in records:
                self._apply(record)
        # The position, not the last record's offset: compaction leaves gaps in the offsets.
        with self._changed:
            self._applied = max(self._applied, consumer.position(tp))
            self._changed.notify_all()

    def _apply(self, record: ConsumerRecord) -> None:
        try:
            event = decode_event(record.value)
        except UnknownEventError as exc:
            log.error("registry offset %d cannot be read: %s", record.offset, exc)
            event = None
        if isinstance(event, TokenIssued | TokenRevoked | AdminAudited):
            # Tokens and the audit trail are replaced whole by the fold itself (copy on write).
            self.registry.apply(event)
        elif isinstance(
            event, CampaignDefined | LinkIssued | LinkRevoked | DurationMedianSet | ReviewDecided
        ):
            # Copy on write: readers on other threads iterate the campaigns while this thread
            # folds; they always see a whole dict, never one that changes size under them.
            scratch = Registry()
            scratch.campaigns = dict(self.registry.campaigns)
            scratch.apply(event)
            self.registry.campaigns = scratch.campaigns


class RegistryPublisher:
    """Appends registry events with acks=all; returns the offset each one was written at."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self._producer = KafkaProducer(**producer_config(bootstrap, linger_ms=0))

    def define(self, definition: CampaignDefinition, timeout_s: float = 10.0) -> int:
        event = CampaignDefined(
            campaign=definition.campaign, defined_at=dt.datetime.now(dt.UTC), definition=definition
        )
        # One partition, so the fold is in one total order. The key is unique per definition:
        # compaction (which keeps the topic forever) must not drop an earlier definition, since
        # the fold merges them (links, questionnaire versions and revocation times accumulate).
        key = f"{definition.campaign}\x1f{event.defined_at.isoformat()}".encode()
        sent = self._producer.send(self.topic, value=encode_event(event), key=key, partition=0)
        return int(sent.get(timeout=timeout_s).offset)

    def publish(
        self,
        event: (DurationMedianSet | ReviewDecided | LinkIssued | LinkRevoked | TokenIssued
                | TokenRevoked | AdminAudited),
        timeout_s: float = 10.0,
    ) -> int:
        """A review decision, a median, a unit's link issued or revoked, a token's issue or
        revocation, an audit record; keyed uniquely, so compaction keeps every one."""
        if isinstance(event, TokenIssued | TokenRevoked):
            key = f"*\x1f{event.kind}\x1f{event.token_id}".encode()
        elif isinstance(event, AdminAudited):
            key = f"{event.campaign}\x1f{event.kind}\x1f{event.audit_id}".encode()
        else:
            if isinstance(event, ReviewDecided):
                name = event.decision_id
            elif isinstance(event, DurationMedianSet):
                name = (f"median\x1f{event.questionnaire_version}"
                        f"\x1f{event.effective_at.isoformat()}")
            elif isinstance(event, LinkIssued):
                name = f"{event.link_code}\x1f{event.issued_at.isoformat()}"
            else:
                name = f"{event.link_code}\x1f{event.revoked_at.isoformat()}"
            key = f"{event.campaign}\x1f{event.kind}\x1f{name}".encode()
        sent = self._producer.send(self.topic, value=encode_event(event), key=key, partition=0)
        return int(sent.get(timeout=timeout_s).offset)

    def close(self) -> None:
        self._producer.close(timeout=5)
