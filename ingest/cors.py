"""CORS for POST /v1/submissions: only the configured answering-page origins may post cross-site.

The collector builds a `CorsPolicy` only when origins are configured, so with none (the default)
the hot path pays nothing but one `is None` check. Origins are compared exactly (scheme, host and
port, as browsers send them); there is no wildcard, on purpose: an open collector would let any
site submit answer sheets from its visitors' browsers.
"""

from __future__ import annotations

from collections.abc import Iterable

from ingest.asgi import Message, Scope, Send, header

ALLOW_METHODS = b"POST, OPTIONS"
ALLOW_HEADERS = b"content-type"
# Browsers cap this (Chromium at 2 h); one preflight per page load and origin is plenty.
MAX_AGE_SECONDS = 7200
_VARY = (b"vary", b"Origin")


def _normalise(origin: str) -> bytes:
    return origin.strip().rstrip("/").lower().encode("latin-1")


class CorsPolicy:
    def __init__(self, origins: Iterable[str]) -> None:
        self.origins = frozenset(_normalise(o) for o in origins if o.strip())

    def allowed_origin(self, scope: Scope) -> bytes | None:
        """The request's Origin header when it is one of ours, else None."""
        origin = header(scope, b"origin")
        if origin is None:
            return None
        return origin if origin.strip().rstrip(b"/").lower() in self.origins else None

    def is_preflight(self, scope: Scope) -> bool:
        return (
            scope["method"] == "OPTIONS"
            and header(scope, b"access-control-request-method") is not None
        )

    async def send_preflight(self, send: Send, origin: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [
                    (b"access-control-allow-origin", origin),
                    (b"access-control-allow-methods", ALLOW_METHODS),
                    (b"access-control-allow-headers", ALLOW_HEADERS),
                    (b"access-control-max-age", str(MAX_AGE_SECONDS).encode()),
                    _VARY,
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})


def vary_only(send: Send) -> Send:
    """Responses to other origins carry no CORS header, but caches must still key on Origin."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), _VARY]
        await send(message)

    return wrapped


def with_allow_origin(send: Send, origin: bytes) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [
                *message.get("headers", ()),
                (b"access-control-allow-origin", origin),
                _VARY,
            ]
        await send(message)

    return wrapped
