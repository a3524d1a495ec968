"""Response compression for the read side: zstd, brotli or gzip (starlette-compress), whichever
the client's Accept-Encoding allows, for HTML, JSON, JS and CSS bodies of 1 KiB and more.

Only the API app is wrapped. `POST /v1/submissions` is answered by the collector (ingest/), a
bare ASGI app that hands every other request to the API: nothing here runs on the submission
hot path. Server-Sent Events are left uncompressed: a compressor per display screen would cost
CPU on every tick for ten thousand screens, for events of a few KB. Responses that already
carry a Content-Encoding (static assets compressed once at start, snapshot views compressed once
per tick with `negotiate` and `compress` below) pass through untouched.
"""

from __future__ import annotations

import gzip

import brotli
import zstandard
from fastapi import FastAPI
from starlette_compress import CompressMiddleware, remove_compress_type

# The middleware's own parser, so a view compressed ahead and the middleware choose alike.
from starlette_compress._utils import parse_accept_encoding

MINIMUM_SIZE = 1024
# Levels favour speed: a leaderboard is a few KB.
ZSTD_LEVEL = 3
BROTLI_QUALITY = 4
GZIP_LEVEL = 6
PREFERENCE = ("zstd", "br", "gzip")  # the middleware's order, whatever the client's q-values

remove_compress_type("text/event-stream")


def add_compression(app: FastAPI) -> None:
    app.add_middleware(
        CompressMiddleware, minimum_size=MINIMUM_SIZE, zstd_level=ZSTD_LEVEL,
        brotli_quality=BROTLI_QUALITY, gzip_level=GZIP_LEVEL,
    )


def negotiate(accept_encoding: str | None, size: int) -> str | None:
    """The encoding the middleware would use for a body of `size` bytes; None: identity."""
    if not accept_encoding or size < MINIMUM_SIZE:
        return None
    accepted = parse_accept_encoding(accept_encoding)
    return next((e for e in PREFERENCE if e in accepted), None)


def compress(body: bytes, encoding: str) -> bytes:
    if encoding == "zstd":
        return zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(body)
    if encoding == "br":
        return bytes(brotli.compress(body, quality=BROTLI_QUALITY))
    if encoding == "gzip":
        return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
    raise ValueError(f"unknown encoding {encoding!r}")
