"""HTTP answers for views of a read model snapshot: cache headers, entity tags and 304s.

Public views are sent `Cache-Control: public, max-age=1` (a tick): any proxy or CDN may keep
them that long. A view scoped by a token is `private` (only the reader's own browser may keep
it) and varies on Authorization. A view is compressed here, once per encoding and tick, as the
middleware (api/compression.py) would have done per request; `Vary: Accept-Encoding` is set
here too so a 304 carries the same Vary as the 200.
"""

from __future__ import annotations

from fastapi import Request, Response

from api import read_metrics
from api.compression import negotiate
from api.readmodel import View

PUBLIC_MAX_AGE_S = 1
JSON = "application/json"


def cache_control(view: View) -> str:
    scope = "private" if view.private else "public"
    return f"{scope}, max-age={PUBLIC_MAX_AGE_S}"


def respond(request: Request, view: View) -> Response:
    """The view, or `304 Not Modified` when the request's If-None-Match names its tag."""
    headers = {
        "etag": view.etag,
        "cache-control": cache_control(view),
        "vary": "Accept-Encoding, Authorization" if view.private else "Accept-Encoding",
    }
    if _matches(request.headers.get("if-none-match"), view.etag):
        read_metrics.NOT_MODIFIED.inc()
        return Response(status_code=304, headers=headers)
    asked = request.headers.getlist("accept-encoding")
    encoding = negotiate(", ".join(asked), len(view.body)) if asked else None
    if encoding is None:
        return Response(view.body, media_type=JSON, headers=headers)
    headers["content-encoding"] = encoding
    return Response(view.compressed(encoding), media_type=JSON, headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    """Weak comparison (RFC 9110 §13.1.2): `*`, or any listed tag equal up to its W/ prefix."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(
        tag.strip().removeprefix("W/") == opaque for tag in if_none_match.split(",")
    )
