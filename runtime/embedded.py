"""Everything in one process: file logs, the embedded processor, chDB, the collector and the API."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path

from api.app import build_api
from api.review import refresh_medians
from api.services import Services
from core.anomaly import AnomalyEngine, text_questions_from
from core.registry import Registry, RegistryEvent
from eventlog.file_log import FileLog
from eventlog.offsets import OffsetStore
from ingest.asgi import ASGIApp
from ingest.collector import Collector
from runtime.registry import fold_log
from schemas.campaign import CampaignDefinition
from schemas.events import (
    CampaignDefined,
    SubmissionJudged,
    encode_event,
)
from schemas.settings import Settings
from storage import open_store
from storage.findings import SqlFindings
from stream_processors.embedded import EmbeddedProcessor
from stream_processors.findings import FindingsStep
from stream_processors.pending import PendingSubmissions

log = logging.getLogger(__name__)


class EmbeddedRuntime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        data = Path(settings.data_dir).resolve()
        data.mkdir(parents=True, exist_ok=True)
        self.raw = FileLog(data / "raw", fsync=settings.log_fsync)
        self.registry_log = FileLog(data / "registry", fsync=True)
        self.store = open_store(f"chdb://{data / 'chdb'}")
        self.store.migrate()
        self.store.repair_counts()
        self.registry = Registry()
        fold_log(self.registry_log, self.registry)
        # A decision logged just before a crash may not have reached the store; applying every
        # one again is harmless (idempotent) and cheap (decisions are few).
        for state in self.registry.campaigns.values():
            for decision in state.reviews:
                self.store.apply_review(decision)
        self.pending = PendingSubmissions()
        self.findings = SqlFindings(self.store)
        engine = AnomalyEngine(text_questions=text_questions_from(self.registry))
        findings_step = FindingsStep(self.findings, engine)
        # Detector state is in memory: rebuilt from the stored verdicts of the hours a burst
        # baseline looks back over (and the open hour), so a restart mid-window raises the same
        # findings as no restart. Every verdict stored was observed before (the findings step
        # runs on each batch after its insert), and none stored is observed again after.
        rebuilt = findings_step.rebuild(self.store.iter_recent_verdicts(
            engine.config.burst.history_hours + 1))
        log.info("anomaly detectors rebuilt from %d stored verdicts", rebuilt)
        self.processor = EmbeddedProcessor(
            self.raw, OffsetStore(data / "offsets.json"), self.store, self.registry,
            hash_key=settings.hash_key, batch_rows=settings.sink_batch_rows,
            on_judged=self._judged, memory_capacity=settings.judge_memory_capacity,
            findings=findings_step,
        )
        remembered = self.processor.rebuild_state()
        log.info("embedded runtime at %s: %d verdicts remembered, resuming at raw offset %d",
                 data, remembered, self.processor.position)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._median_task: asyncio.Task[None] | None = None
        services = Services(
            registry=self.registry, store=self.store, admin_token=settings.admin_token,
            define_campaign=self.define_campaign, ready=self.ready,
            is_pending=lambda c, s: (c, s) in self.pending,
            publish_registry=self.publish_registry,
        )
        services.extra["findings"] = self.findings
        self.api = build_api(services)
        self.app: ASGIApp = Collector(
            self.raw, self.registry.campaigns.keys, hash_key=settings.hash_key,
            fallback=self.api, ready=self.ready, on_received=self.pending.add,
            rate_limit_per_ip=settings.rate_limit_per_ip,
            rate_limit_per_link=settings.rate_limit_per_link,
            max_in_flight=settings.max_in_flight, trusted_proxies=settings.trusted_proxies,
            cors_origins=settings.cors_origins,
        )

    def _judged(self, rows: Sequence[SubmissionJudged]) -> None:
        for row in rows:
            self.pending.discard(row.campaign, row.submission_id)

    def ready(self) -> bool:
        running = self._task is not None and not self._task.done()
        return running and self.raw.healthy() and self.processor.healthy

    async def define_campaign(self, definition: CampaignDefinition) -> None:
        event = CampaignDefined(
            campaign=definition.campaign, defined_at=dt.datetime.now(dt.UTC), definition=definition
        )
        await self.registry_log.append(definition.campaign.encode(), encode_event(event))
        self.registry.apply(event)

    async def publish_registry(self, event: RegistryEvent) -> None:
        """Append a review decision or a median to the registry log, then put it in force."""
        key = getattr(event, "campaign", "").encode()
        await self.registry_log.append(key, encode_event(event))
        self.registry.apply(event)

    async def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self.processor.run(self._stop))
        # The relative speed floor's median, published every relative_refresh_minutes.
        self._median_task = asyncio.create_task(refresh_medians(
            self.store, self.registry, self.publish_registry, self._stop
        ))

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        if self._median_task is not None:
            await self._median_task
        self.raw.close()
        self.registry_log.close()
        self.store.close()
