"""Everything in one process: file logs, the embedded processor, chDB, the collector and the API.

`serve` listens before the heavy half is open (chDB, the store's migrations, FastAPI and the API's
routes: about half a second of CPU, `open_later=True`): the collector takes sheets into the raw
log from the first moment, and every other request waits until the API is there (issue 20).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from core.access import ENV_ADMIN_LABEL
from core.registry import Registry, RegistryEvent
from eventlog.file_log import FileLog
from ingest.asgi import ASGIApp, Receive, Scope, Send, send_json
from ingest.collector import Collector
from runtime.registry import fold_log
from schemas.campaign import CampaignDefinition
from schemas.events import (
    CampaignDefined,
    SubmissionJudged,
    encode_event,
)
from schemas.settings import Settings
from stream_processors import detector_checkpoint, memory_checkpoint
from stream_processors.pending import PendingSubmissions

if TYPE_CHECKING:
    from fastapi import FastAPI

    from api.opens import OpenCounter
    from storage import SqlStore
    from storage.findings import SqlFindings
    from stream_processors.embedded import EmbeddedProcessor
    from stream_processors.findings import FindingsStep

log = logging.getLogger(__name__)
# How long a request other than a sheet or a probe waits for the API while the store opens,
# before a 503 with Retry-After (a migration over a big store can take minutes).
API_WAIT_S = 30.0


class EmbeddedRuntime:
    store: SqlStore
    findings: SqlFindings
    findings_step: FindingsStep
    processor: EmbeddedProcessor
    opens: OpenCounter
    api: FastAPI

    def __init__(
        self, settings: Settings, *, admin_label: str = ENV_ADMIN_LABEL, open_later: bool = False
    ) -> None:
        """`admin_label`: whom SURVEY_ADMIN_TOKEN stands for on the audit trail (the CLI,
        running this in process, names its operator). `open_later`: the logs, the registry and
        the collector only; `open()` (or `open_behind()`) opens the store and builds the API."""
        self.settings = settings
        self.admin_label = admin_label
        self.data = data = Path(settings.data_dir).resolve()
        data.mkdir(parents=True, exist_ok=True)
        self.memory_checkpoint = data / "judge-memory.ckpt"
        self.detector_checkpoint = data / detector_checkpoint.FILE_NAME
        self._memory_whole = False  # a checkpoint is written only of a wholly loaded memory
        self.raw = FileLog(data / "raw", fsync=settings.log_fsync)
        self.registry_log = FileLog(data / "registry", fsync=True)
        self.registry = Registry()
        fold_log(self.registry_log, self.registry)
        self.pending = PendingSubmissions()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._median_task: asyncio.Task[None] | None = None
        self._opens_task: asyncio.Task[None] | None = None
        self._opened = False
        self._ending = False  # end_streams was called: the server is stopping
        self._api_ready: asyncio.Event | None = None
        self._open_error: BaseException | None = None
        # Set by stop(): judging's catch-up (a thread) ends between its steps rather than finish
        # a rebuild nobody will use.
        self._stopping = threading.Event()
        self.app: ASGIApp = Collector.from_settings(
            settings, self.raw, self.registry.campaigns.keys,
            fallback=self._to_api, ready=self.ready, on_received=self.pending.add,
        )
        if not open_later:
            self.open()

    def open(self) -> None:
        """The heavy half: chDB and its migrations, the judging processor, the API. Its imports
        are here, not at the top, so that `serve` listens before paying for them."""
        from api.app import build_api
        from api.opens import OpenCounter
        from api.services import Services, access_settings
        from core.anomaly import AnomalyEngine, text_questions_from
        from eventlog.offsets import OffsetStore
        from storage import open_store
        from storage.findings import SqlFindings
        from storage.opens import SqlOpens
        from stream_processors.embedded import EmbeddedProcessor
        from stream_processors.findings import FindingsStep

        settings, data = self.settings, self.data
        self.store = open_store(f"chdb://{data / 'chdb'}")
        self.store.migrate()
        self.findings = SqlFindings(self.store)
        engine = AnomalyEngine(text_questions=text_questions_from(self.registry))
        # Rebuilt from the store in _catch_up, before judging's first batch, not here: the hours
        # it reads back (49) can hold millions of sheets late in a campaign.
        self.findings_step = FindingsStep(self.findings, engine)
        self.processor = EmbeddedProcessor(
            self.raw, OffsetStore(data / "offsets.json"), self.store, self.registry,
            hash_key=settings.hash_key, batch_rows=settings.sink_batch_rows,
            on_judged=self._judged, memory_capacity=settings.judge_memory_capacity,
            findings=self.findings_step,
        )
        self.opens = OpenCounter(
            self.registry, SqlOpens(self.store), settings.opens_flush_seconds)
        services = Services(
            registry=self.registry, store=self.store, **access_settings(settings),
            define_campaign=self.define_campaign, ready=self.ready,
            is_pending=lambda c, s: (c, s) in self.pending,
            publish_registry=self.publish_registry, opens=self.opens,
            public_base_url=settings.public_base_url, admin_label=self.admin_label,
        )
        services.extra["findings"] = self.findings
        self.api = build_api(services)
        self._opened = True

    def end_streams(self) -> None:
        """Ends the API's live screens' streams (the server is stopping; see LiveCounts). While
        the store is still opening there are none yet, but screens may be waiting for the API:
        `open_behind` ends theirs once it is built."""
        self._ending = True
        if self._opened:
            self.api.state.live.end_all()

    async def open_behind(self) -> None:
        """`open()` on a worker thread, while the collector serves on the event loop; then the
        requests waiting for the API go on (or, if it failed, are answered 503).

        Nothing on the event loop may use a relative path or import pyarrow meanwhile: chDB's
        import changes the process's working directory and holds pyarrow out for its duration
        (storage/chdb_store.py)."""
        ready = self._api_event()
        try:
            await asyncio.to_thread(self.open)
            if self._ending:  # a stop came while it opened: no stream may outlive it
                self.api.state.live.end_all()
        except BaseException as exc:
            self._open_error = exc
            log.error("the store or the API could not be opened: %s", exc)
            raise
        finally:
            ready.set()

    def _api_event(self) -> asyncio.Event:
        if self._api_ready is None:
            self._api_ready = asyncio.Event()
            if self._opened:
                self._api_ready.set()
        return self._api_ready

    async def _to_api(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Every request but a sheet: to the API, once it is built. Meanwhile the probes answer
        at once (alive; not ready), and other requests wait a bounded time for it."""
        if not self._opened:
            path = scope.get("path", "")
            if path == "/healthz":
                await send_json(send, 200, {"status": "ok"})
                return
            if path == "/readyz" or self._open_error is not None:
                await send_json(send, 503, {"status": "not ready", "detail": self._starting()})
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._api_event().wait(), API_WAIT_S)
            if not self._opened:
                await send_json(send, 503, {"detail": self._starting()},
                                [(b"retry-after", b"5")])
                return
        await self.api(scope, receive, send)

    def _starting(self) -> str:
        if self._open_error is not None:
            return "the store could not be opened; see the server's log"
        return "starting: the store is being opened"

    def _judged(self, rows: Sequence[SubmissionJudged]) -> None:
        for row in rows:
            self.pending.discard(row.campaign, row.submission_id)

    def ready(self) -> bool:
        running = self._task is not None and not self._task.done()
        return running and self._opened and self.raw.healthy() and self.processor.healthy

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
        from api.review import refresh_medians

        if not self._opened:
            await self.open_behind()
        self._stop.clear()
        self._task = asyncio.create_task(self._judge())
        # The relative speed floor's median, published every relative_refresh_minutes.
        self._median_task = asyncio.create_task(refresh_medians(
            self.store, self.registry, self.publish_registry, self._stop
        ))
        self._opens_task = asyncio.create_task(self.opens.run(self._stop))

    def _catch_up(self) -> None:
        """What judging needs before its first sheet (the counts repaired, review decisions
        applied, the anomaly detectors' open windows and the judging memory rebuilt); its cost
        grows with the store, so it runs behind a serving collector (sheets get their 202 and
        wait in the raw log), never before it, and no sheet is judged against half-loaded
        memory."""
        self.store.repair_counts()
        if self._stopping.is_set():
            return
        # A decision logged just before a crash may not have reached the store; applying every
        # one again is harmless (idempotent) and cheap (decisions are few).
        for state in self.registry.campaigns.values():
            for decision in state.reviews:
                self.store.apply_review(decision)
        started = time.monotonic()
        position = self.processor.position
        # Detector state is in memory: after a clean stop, reopened from its checkpoint;
        # otherwise rebuilt from the stored verdicts of the hours a burst baseline looks back
        # over (and the open hour), so a restart mid-window raises the same findings as no
        # restart. Every verdict stored was observed before (the findings step runs on each
        # batch after its insert), and none stored is observed again after.
        if self._stopping.is_set():
            return
        engine = self.findings_step.engine
        if detector_checkpoint.restore(self.detector_checkpoint, engine, position,
                                       self.settings.hash_key):
            log.info("anomaly detectors restored from %s in %.1f s", self.detector_checkpoint,
                     time.monotonic() - started)
        else:
            recent = self.store.iter_recent_verdicts(engine.config.burst.history_hours + 1)
            with contextlib.closing(recent):  # a stop may leave it part-read
                rebuilt = self.findings_step.rebuild(recent, stopping=self._stopping.is_set)
            log.info("anomaly detectors rebuilt from %d stored verdicts in %.1f s", rebuilt,
                     time.monotonic() - started)
        if self._stopping.is_set():
            return
        started = time.monotonic()
        if memory_checkpoint.restore(self.memory_checkpoint, self.processor.memory, position):
            log.info("embedded runtime: judging memory restored from %s in %.1f s, resuming at "
                     "raw offset %d", self.memory_checkpoint, time.monotonic() - started, position)
        else:
            remembered = self.processor.rebuild_state()
            log.info("embedded runtime: %d verdicts remembered in %.1f s, resuming at raw offset "
                     "%d", remembered, time.monotonic() - started, position)
        self._memory_whole = True

    async def _judge(self) -> None:
        await asyncio.to_thread(self._catch_up)
        if not self._memory_whole:
            return  # stopped during the catch-up: nothing judged, no checkpoint
        await self.processor.run(self._stop)

    def _checkpoint(self) -> None:
        """At the committed offset: the next start reads these, not the store. A failed write
        costs that start a rebuild, never the rest of the stop."""
        position = self.processor.position
        try:
            memory_checkpoint.save(self.memory_checkpoint, self.processor.memory, position)
        except Exception:
            log.exception("judging memory checkpoint not written: the next start rebuilds it")
        if self.findings_step.failures_since_start():
            # Findings this run could not store are repaired only by a rebuild from the store.
            log.warning("detector findings failed to store in this run: no detector checkpoint")
            self.detector_checkpoint.unlink(missing_ok=True)
            return
        try:
            detector_checkpoint.save(self.detector_checkpoint, self.findings_step.engine,
                                     position, self.settings.hash_key)
        except Exception:
            log.exception("detector checkpoint not written: the next start rebuilds them")
            self.detector_checkpoint.unlink(missing_ok=True)

    async def stop(self) -> None:
        self._stopping.set()
        self._stop.set()
        if self._task is not None:
            try:
                await self._task
            except Exception:
                # Judging had failed: no checkpoint of its memory, but everything below closes.
                log.exception("judging ended with an error; closing without a checkpoint")
            else:
                if self._memory_whole:
                    self._checkpoint()
        if self._median_task is not None:
            await self._median_task
        if self._opens_task is not None:
            await self._opens_task  # flushes the last tally before the store closes
        if self._opened:
            self.api.state.reads.close()  # its poller reads the store: stopped before the store
        self.raw.close()
        self.registry_log.close()
        if self._opened:
            self.store.close()
