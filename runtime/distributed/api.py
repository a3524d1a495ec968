"""`survey-ingest api`: the read API over ClickHouse, with admin writes to the registry topic."""

from __future__ import annotations

import asyncio
import logging

from fastapi import HTTPException

from api.app import build_api
from api.opens import OpenCounter
from api.review import refresh_medians
from api.services import Services, access_settings
from core.registry import RegistryEvent
from runtime.distributed.registry import RegistryFollower, RegistryPublisher
from runtime.distributed.serving import serve_http
from schemas.campaign import CampaignDefinition
from schemas.events import (
    AdminAudited,
    DurationMedianSet,
    LinkIssued,
    LinkRevoked,
    ReviewDecided,
    TokenIssued,
    TokenRevoked,
)
from schemas.settings import Settings
from storage import open_store
from storage.findings import SqlFindings
from storage.opens import SqlOpens
from stream_processors.faust_topology import Topology

log = logging.getLogger(__name__)
APPLY_TIMEOUT_S = 30.0


class _Admin:
    """Publishes definitions and waits until this process's follower has applied them."""

    def __init__(self, settings: Settings, follower: RegistryFollower) -> None:
        self.settings = settings
        self.follower = follower
        self._publisher: RegistryPublisher | None = None

    def _publish(self, definition: CampaignDefinition) -> int:
        if self._publisher is None:  # created on first use: the API starts without Kafka too
            self._publisher = RegistryPublisher(self.settings.kafka_bootstrap, self.follower.topic)
        return self._publisher.define(definition)

    async def define(self, definition: CampaignDefinition) -> None:
        try:
            offset = await asyncio.to_thread(self._publish, definition)
        except Exception as exc:
            log.warning("registry write failed: %s", exc)
            raise HTTPException(503, "registry unavailable, nothing changed; retry") from exc
        applied = await asyncio.to_thread(self.follower.wait_applied, offset, APPLY_TIMEOUT_S)
        if not applied:
            # Written (it will take effect), but not confirmed in force here in time.
            raise HTTPException(503, "definition written but not yet in force; check again")

    async def publish(self, event: RegistryEvent) -> None:
        """A review decision, a median, a unit's link issued or revoked, a token event or an
        audit record onto the registry topic, in force here on return."""
        if not isinstance(
            event, DurationMedianSet | ReviewDecided | LinkIssued | LinkRevoked | TokenIssued
            | TokenRevoked | AdminAudited
        ):
            raise TypeError(f"not published this way: {type(event).__name__}")

        def send() -> int:
            if self._publisher is None:
                self._publisher = RegistryPublisher(
                    self.settings.kafka_bootstrap, self.follower.topic
                )
            return self._publisher.publish(event)

        try:
            offset = await asyncio.to_thread(send)
        except Exception as exc:
            log.warning("registry write failed: %s", exc)
            raise HTTPException(503, "registry unavailable, nothing changed; retry") from exc
        applied = await asyncio.to_thread(self.follower.wait_applied, offset, APPLY_TIMEOUT_S)
        if not applied:
            raise HTTPException(503, "written but not yet in force here; check again")

    def close(self) -> None:
        if self._publisher is not None:
            self._publisher.close()


async def run_api(settings: Settings) -> None:
    topology = Topology.of(settings)
    follower = RegistryFollower(settings.kafka_bootstrap, topology.registry).start()
    store = open_store(settings.clickhouse_url)
    admin = _Admin(settings, follower)
    opens = OpenCounter(follower.registry, SqlOpens(store), settings.opens_flush_seconds)
    services = Services(
        registry=follower.registry, store=store, **access_settings(settings),
        define_campaign=admin.define, ready=follower.ready, publish_registry=admin.publish,
        opens=opens, public_base_url=settings.public_base_url,
    )
    # Written by `python -m runtime.distributed.findings`; read here.
    services.extra["findings"] = SqlFindings(store)
    print(f"survey-ingest api on http://{settings.host}:{settings.port} "
          f"(store {settings.clickhouse_url})", flush=True)
    stop = asyncio.Event()
    medians = asyncio.create_task(refresh_medians(store, follower.registry, admin.publish, stop))
    app = build_api(services)
    flusher = asyncio.create_task(opens.run(stop))
    try:
        await serve_http(app, settings.host, settings.port,
                         end_streams=app.state.live.end_all)
    finally:
        stop.set()
        await medians
        await flusher
        app.state.reads.close()  # its poller reads the store: stopped before the store
        admin.close()
        follower.stop()
        store.close()
