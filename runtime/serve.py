"""Running the embedded runtime under uvicorn (`serve`), and offline campaign loads."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import uvicorn

from runtime.distributed.serving import GRACEFUL_SHUTDOWN_S, LISTEN_BACKLOG, DrainingServer
from runtime.embedded import EmbeddedRuntime
from runtime.signals import graceful_signals
from schemas.campaign import CampaignDefinition
from schemas.settings import Settings

log = logging.getLogger(__name__)


def uvicorn_server(app: object, settings: Settings,
                   end_streams: Callable[[], None] | None = None) -> uvicorn.Server:
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=settings.host, port=settings.port, lifespan="off", log_level="warning",
        access_log=False, timeout_keep_alive=30, backlog=LISTEN_BACKLOG,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        # The collector decides itself which peers may name the client (SURVEY_TRUSTED_PROXIES);
        # uvicorn's own X-Forwarded-For rewriting, on by default for 127.0.0.1, would let any
        # local peer choose the address the per-IP rate limit keys on.
        proxy_headers=False,
        # No route speaks WebSocket (live screens are server-sent events): without this, uvicorn
        # imports the websockets package at every start.
        ws="none",
    )
    return DrainingServer(config, 0.0, end_streams)


async def serve(settings: Settings) -> None:
    """Listens first, with the logs, the registry and the collector; then opens the store and
    builds the API behind it (sheets get their 202 meanwhile, probes answer at once, other
    requests wait for the API), then judging catches up (runtime/embedded.py), unless a stop
    came meanwhile."""
    runtime = EmbeddedRuntime(settings, open_later=True)
    server = uvicorn_server(runtime.app, settings, runtime.end_streams)
    print(f"survey-ingest serving on http://{settings.host}:{settings.port} "
          f"(data in {settings.data_dir})", flush=True)
    with graceful_signals():
        serving = asyncio.create_task(server.serve())
        try:
            while not server.started and not serving.done():
                await asyncio.sleep(0.005)
            if not serving.done():
                await runtime.open_behind()
            if not serving.done() and not server.should_exit:
                await runtime.start()
            await serving
        except BaseException:
            server.should_exit = True
            with contextlib.suppress(BaseException):
                await serving
            raise
        finally:
            await runtime.stop()
            log.info("stopped cleanly")


async def load_offline(settings: Settings, definition: CampaignDefinition) -> None:
    runtime = EmbeddedRuntime(settings)
    try:
        await runtime.define_campaign(definition)
    finally:
        await runtime.stop()
