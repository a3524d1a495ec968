"""The portal pages (CONTRACT §8): a unit's own view and a coordinator's view of its work
region, phone-first, in Chinese. The HTML here is a shell that holds no data: api/static/
portal.js fetches everything from the API with the session cookie of the /portal sign-in (or
a token typed on the page, kept in sessionStorage), so it shows what that token may read.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.deps import public
from api.pages import e, json_for_script
from api.services import Services

STATIC_DIR = Path(__file__).parent / "static"
# As the other pages, plus blob: images (QR codes fetched with the token, shown as blobs).
_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def _version(name: str) -> str:
    path = STATIC_DIR / name
    return hashlib.sha256(path.read_bytes()).hexdigest()[:10] if path.is_file() else "0"


def _shell(config: dict[str, object], title: str, css: str, js: str) -> str:
    return (
        '<!doctype html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">\n'
        '<meta name="robots" content="noindex">\n<link rel="icon" href="data:,">\n'
        f"<title>{e(title)}</title>\n"
        f'<link rel="stylesheet" href="/static/portal.css?v={css}">\n</head>\n'
        '<body class="portal">\n'
        '<header class="bar"><a class="brand" href="#top" id="top">问卷采集 · 单位服务</a>'
        '<button type="button" id="signout" class="link-button" hidden>退出</button></header>\n'
        '<main id="main" class="wrap" aria-live="polite"><p class="muted">加载中…</p></main>\n'
        f'<script type="application/json" id="portal-config">{json_for_script(config)}</script>\n'
        f'<script src="/static/portal.js?v={js}" defer></script>\n</body>\n</html>\n'
    )


def build_portal_router(services: Services) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    css, js = _version("portal.css"), _version("portal.js")

    @router.get("/portal/{campaign}/unit/{unit}", response_class=HTMLResponse,
                dependencies=[public()])
    async def unit_page(campaign: str, unit: str, view: str = "") -> HTMLResponse:
        """A unit's portal page. Who: anyone (the shell holds no data; the API decides)."""
        config = {"campaign": campaign, "mode": "unit", "id": unit,
                  "readonly": view == "readonly"}
        return HTMLResponse(_shell(config, "单位服务 · 采集进度", css, js), headers=_HEADERS)

    @router.get("/portal/{campaign}/region/{region}", response_class=HTMLResponse,
                dependencies=[public()])
    async def region_page(campaign: str, region: str) -> HTMLResponse:
        """A coordinator's page of its work region. Who: anyone (the shell holds no data)."""
        config = {"campaign": campaign, "mode": "region", "id": region, "readonly": True}
        return HTMLResponse(_shell(config, "工作区 · 单位进度", css, js), headers=_HEADERS)

    return router
