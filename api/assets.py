"""Static assets, served by the product itself: the pages' scripts and styles (api/static) and
Swagger UI for `/docs` (the swagger-ui-bundle-v2 package), so an intranet or air-gapped install
needs no CDN.

Each asset is addressed by its content hash (`/static/survey.3f2a9c1b0d.js`) and sent
`public, max-age=31536000, immutable`: a new build changes the name, never the bytes behind one.
The plain name (`/static/survey.js`) still answers, cached for 5 minutes, for links written by
hand. Bodies are compressed once (brotli, gzip) on first request and kept.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import brotli
from fastapi import APIRouter, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse

from api.deps import public

STATIC_DIR = Path(__file__).parent / "static"
IMMUTABLE = "public, max-age=31536000, immutable"
PLAIN_NAME_CACHE = "public, max-age=300"
COMPRESS_MIN_BYTES = 1024
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
_COMPRESSIBLE = {".js", ".css", ".svg"}
# What /docs needs from the Swagger UI distribution.
_SWAGGER_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")


@dataclass
class Asset:
    name: str
    body: bytes
    media_type: str
    digest: str
    compressible: bool
    _encoded: dict[str, bytes] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def hashed_name(self) -> str:
        stem, dot, suffix = self.name.rpartition(".")
        return f"{stem}.{self.digest}.{suffix}" if dot else f"{self.name}.{self.digest}"

    def encoded(self, encoding: str) -> bytes:
        with self._lock:
            found = self._encoded.get(encoding)
            if found is None:
                if encoding == "br":
                    found = brotli.compress(self.body, quality=9)
                else:
                    found = gzip.compress(self.body, compresslevel=9, mtime=0)
                self._encoded[encoding] = found
            return found


class Assets:
    def __init__(self, sources: Iterable[Path]) -> None:
        self.by_name: dict[str, Asset] = {}
        self.by_hashed: dict[str, Asset] = {}
        for path in sources:
            media = _TYPES.get(path.suffix)
            if media is None or not path.is_file():
                continue
            body = path.read_bytes()
            asset = Asset(
                path.name, body, media, hashlib.sha256(body).hexdigest()[:12],
                path.suffix in _COMPRESSIBLE and len(body) >= COMPRESS_MIN_BYTES,
            )
            self.by_name[asset.name] = asset
            self.by_hashed[asset.hashed_name] = asset

    def url(self, name: str) -> str:
        """The content-hashed URL of an asset (the plain URL if there is no such asset)."""
        asset = self.by_name.get(name)
        return f"/static/{asset.hashed_name}" if asset else f"/static/{name}"

    def response(self, name: str, request: Request) -> Response | None:
        hashed = self.by_hashed.get(name)
        asset = hashed or self.by_name.get(name)
        if asset is None:
            return None
        headers = {
            "cache-control": IMMUTABLE if hashed else PLAIN_NAME_CACHE,
            "etag": f'"{asset.digest}"',
            "x-content-type-options": "nosniff",
        }
        if asset.compressible:
            headers["vary"] = "Accept-Encoding"
        if request.headers.get("if-none-match", "").strip() in (f'"{asset.digest}"', "*"):
            return Response(status_code=304, headers=headers)
        encoding = _pick_encoding(request.headers.get("accept-encoding", ""))
        if asset.compressible and encoding:
            headers["content-encoding"] = encoding
            return Response(asset.encoded(encoding), media_type=asset.media_type,
                            headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)


def _pick_encoding(accept: str) -> str | None:
    offered: set[str] = set()
    for item in accept.split(","):
        coding, _, params = item.partition(";")
        q = params.strip().removeprefix("q=")
        if params and q.replace(".", "", 1).isdigit() and float(q) == 0:
            continue
        offered.add(coding.strip().lower())
    if "br" in offered:
        return "br"
    if "gzip" in offered or "*" in offered:
        return "gzip"
    return None


def default_sources() -> list[Path]:
    from swagger_ui_bundle import swagger_ui_path

    own = sorted(STATIC_DIR.iterdir()) if STATIC_DIR.is_dir() else []
    return [*own, *(Path(str(swagger_ui_path)) / n for n in _SWAGGER_FILES)]


def build_assets_router(assets: Assets, openapi_url: str, title: str) -> APIRouter:
    """`/static/{name}` and the self-hosted `/docs`. Public: no token (CONTRACT §7)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/static/{name}", dependencies=[public()])
    async def static_file(name: str, request: Request) -> Response:
        asset = assets.by_hashed.get(name) or assets.by_name.get(name)
        if asset is not None:
            # A large file's first compression (Swagger UI: 1.5 MB) is kept off the event loop.
            big = len(asset.body) > 256 * 1024
            found = (await asyncio.to_thread(assets.response, name, request) if big
                     else assets.response(name, request))
            if found is not None:
                return found
        return Response(b'{"detail":"no such file"}', status_code=404,
                        media_type="application/json", headers={"cache-control": "no-store"})

    @router.get("/docs", dependencies=[public()])
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{title} - Swagger UI",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url=assets.url("swagger-ui-bundle.js"),
            swagger_css_url=assets.url("swagger-ui.css"),
            swagger_favicon_url=assets.url("favicon-32x32.png"),
        )

    @router.get("/docs/oauth2-redirect", dependencies=[public()])
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    return router
