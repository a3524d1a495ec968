"""Running the embedded runtime under uvicorn (`serve`), and offline campaign loads."""

from __future__ import annotations

import asyncio
import logging

import uvicorn

from runtime.distributed.serving import LISTEN_BACKLOG
from runtime.embedded import EmbeddedRuntime
from runtime.signals import graceful_signals
from schemas.campaign import CampaignDefinition
from schemas.settings import Settings

log = logging.getLogger(__name__)


def uvicorn_server(app: object, settings: Settings) -> uvicorn.Server:
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=settings.host, port=settings.port, lifespan="off", log_level="warning",
        access_log=False, timeout_keep_alive=30, backlog=LISTEN_BACKLOG,
        # The collector decides itself which peers may name the client (SURVEY_TRUSTED_PROXIES);
        # uvicorn's own X-Forwarded-For rewriting, on by default for 127.0.0.1, would let any
        # local peer choose the address the per-IP rate limit keys on.
        proxy_headers=False,
        # No route speaks WebSocket (live screens are server-sent events): without this, uvicorn
        # imports the websockets package at every start.
        ws="none",
    )
    return uvicorn.Server(config)


async def serve(settings: Settings, *, started: asyncio.Event | None = None) -> None:
    runtime = EmbeddedRuntime(settings)
    await runtime.start()
    server = uvicorn_server(runtime.app, settings)
    print(f"survey-ingest serving on http://{settings.host}:{settings.port} "
          f"(data in {settings.data_dir})", flush=True)
    with graceful_signals():
        try:
            await server.serve()
        finally:
            await runtime.stop()
            log.info("stopped cleanly")


async def load_offline(settings: Settings, definition: CampaignDefinition) -> None:
    runtime = EmbeddedRuntime(settings)
    try:
        await runtime.define_campaign(definition)
    finally:
        await runtime.stop()
