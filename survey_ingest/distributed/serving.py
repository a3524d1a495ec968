"""Serving an ASGI app of a distributed role under uvicorn until SIGINT/SIGTERM."""

from __future__ import annotations

from typing import Any

import uvicorn


async def serve_http(app: Any, host: str, port: int) -> None:
    config = uvicorn.Config(
        app, host=host, port=port, lifespan="off", log_level="warning", access_log=False,
        timeout_keep_alive=30,
    )
    await uvicorn.Server(config).serve()
