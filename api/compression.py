"""Response compression for the read side: zstd, brotli or gzip (starlette-compress), whichever
the client's Accept-Encoding allows, for HTML, JSON, JS and CSS bodies of 1 KiB and more.

Only the API app is wrapped. `POST /v1/submissions` is answered by the collector (ingest/), a
bare ASGI app that hands every other request to the API: nothing here runs on the submission
hot path. Server-Sent Events are left uncompressed: a compressor per display screen would cost
CPU on every tick for ten thousand screens, for events of a few KB. Responses that already
carry a Content-Encoding (static assets, compressed once at start) pass through untouched.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette_compress import CompressMiddleware, remove_compress_type

MINIMUM_SIZE = 1024

remove_compress_type("text/event-stream")


def add_compression(app: FastAPI) -> None:
    # Levels favour speed: a leaderboard is a few KB, compressed once per request.
    app.add_middleware(
        CompressMiddleware, minimum_size=MINIMUM_SIZE, zstd_level=3, brotli_quality=4,
        gzip_level=6,
    )
