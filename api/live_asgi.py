"""The short way in for display screens: an anonymous `GET /v1/campaigns/{campaign}/live` is
answered by the route's own handler, called directly, without FastAPI's per-request machinery
(dependency solving, validation, the compression wrapper, a task group per stream) that costs a
screen more than its first event does when ten thousand connect at once.

What it keeps: the route's declared rule, checked by the Gate as for any request; the route's
handler, which decides what the stream is (and what ends it). Whatever is not plainly an
anonymous GET with a well-formed campaign id, and every refusal (an HTTP error from the check
or the handler: a private campaign, an unknown one), goes to the app untouched, which answers
it as it always has: a request with a credential (bearer header or
session cookie) always does, so a bad credential is counted against its client once.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import SESSION_COOKIE
from api.deps import CAMPAIGN_PATTERN, all_routes, rule_of
from api.live import utf8
from core.access import Rule

log = logging.getLogger(__name__)

LIVE_PATH = "/v1/campaigns/{campaign}/live"
_PATH = re.compile(r"/v1/campaigns/([^/]+)/live")
_CAMPAIGN = re.compile(CAMPAIGN_PATTERN)
_CAMPAIGN_MAX = 64  # api/deps.py's CampaignId
_HANDLER_PARAMS = frozenset({"campaign", "access", "request"})

Handler = Callable[..., Coroutine[Any, Any, Any]]


class LiveShortcut:
    """ASGI middleware; the app under it is the FastAPI app that declares the live route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._route: tuple[Rule, Handler, frozenset[str]] | None = None
        self._looked = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        campaign = _anonymous_live(scope)
        route = self._find(scope) if campaign is not None else None
        if campaign is None or route is None:
            await self.app(scope, receive, send)
            return
        rule, handler, params = route
        scope = {**scope, "path_params": {"campaign": campaign}}
        request = Request(scope, receive)
        try:
            access = await scope["app"].state.gate.check(request, rule)
            named = {"campaign": campaign, "access": access, "request": request}
            response = await handler(**{p: named[p] for p in params})
        except HTTPException:
            # A refusal (private campaign), or an unknown campaign: the app says so, as ever.
            await self.app(scope, receive, send)
            return
        if isinstance(response, StreamingResponse):
            await stream(response, receive, send)
        else:
            await response(scope, receive, send)

    def _find(self, scope: Scope) -> tuple[Rule, Handler, frozenset[str]] | None:
        if not self._looked:
            self._looked = True
            self._route = _live_route(scope["app"].routes)
        return self._route


def _anonymous_live(scope: Scope) -> str | None:
    """The campaign of an anonymous `GET .../live` with a valid campaign id, else None."""
    if scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path"):
        return None
    found = _PATH.fullmatch(scope["path"])
    if found is None:
        return None
    campaign = found.group(1)
    if len(campaign) > _CAMPAIGN_MAX or not _CAMPAIGN.fullmatch(campaign):
        return None
    cookie = SESSION_COOKIE.encode()
    for name, value in scope["headers"]:
        if name == b"authorization" or (name == b"cookie" and cookie in value):
            return None
    return campaign


def _live_route(routes: Any) -> tuple[Rule, Handler, frozenset[str]] | None:
    for route in all_routes(routes):
        if isinstance(route, APIRoute) and route.path == LIVE_PATH \
                and "GET" in (route.methods or ()):
            rule = rule_of(route.dependant)
            params = frozenset(inspect.signature(route.endpoint).parameters)
            if rule is None or not params <= _HANDLER_PARAMS:
                log.warning("live route takes %s: every screen goes through FastAPI", params)
                return None
            return rule, route.endpoint, params
    return None


async def stream(response: StreamingResponse, receive: Receive, send: Send) -> None:
    """`response` to the client until the stream ends or the client leaves (what Starlette's
    StreamingResponse does, with one watcher task per screen instead of a task group)."""
    me = asyncio.current_task()
    assert me is not None
    left = False

    async def watch() -> None:
        nonlocal left
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                break
        left = True
        me.cancel()  # wherever the stream waits (its queue, a slow client's drain)

    watcher = asyncio.ensure_future(watch())
    try:
        await _pump(response, send)
    except asyncio.CancelledError:
        if not left:
            raise  # not the client's leaving: the server's shutdown, say
        me.uncancel()
    finally:
        watcher.cancel()


async def _pump(response: StreamingResponse, send: Send) -> None:
    chunks = response.body_iterator
    try:
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": response.raw_headers})
        async for chunk in chunks:
            await send({"type": "http.response.body", "body": utf8(chunk), "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        closing = getattr(chunks, "aclose", None)
        if closing is not None:
            await closing()
