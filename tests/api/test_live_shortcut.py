"""The display screens' short way in (api/live_asgi.py), their streams' keep-alive and leaving,
and snapshot views compressed once per tick — driven in process over ASGI (no sockets): the
app is the real one, its store a stand-in with fixed counts."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any

import brotli
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from starlette.requests import Request
from starlette.types import Message

from api import live as live_module
from api.live import LiveCounts, SseText
from api.live_asgi import LiveShortcut
from api.read_responses import respond
from api.read_views import full_campaign_content
from api.readmodel import ReadModels
from core.counting import Count
from core.registry import Registry
from schemas.campaign import CampaignDefinition
from schemas.events import CampaignDefined
from tests.api.support import ADMIN_TOKEN, CAMPAIGN, build
from tests.helpers import campaign_definition

PRIVATE = "rs-private"
ADMIN_BEARER = b"Bearer " + ADMIN_TOKEN.encode()


class FixedCounts:
    def unit_counts(self, campaign: str) -> dict[str, Count]:
        return {"gd-cyber": Count(valid=3, rejected=1)}


def _registry() -> Registry:
    registry = Registry()
    for campaign, visibility in ((CAMPAIGN, "public"), (PRIVATE, "private")):
        raw = campaign_definition(campaign)
        raw["visibility"] = {"leaderboard": visibility}
        registry.apply(CampaignDefined(
            campaign=campaign, defined_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
            definition=CampaignDefinition.model_validate(raw),
        ))
    return registry


@pytest.fixture
def app() -> Iterator[FastAPI]:
    made = build(FixedCounts(), _registry())  # type: ignore[arg-type]
    try:
        yield made
    finally:
        made.state.reads.close()


class Passed:
    """The app under the shortcut, standing in: records what reached it."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 599, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _scope(app: FastAPI, path: str, method: str = "GET",
           headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": method, "scheme": "http", "path": path,
            "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": headers or [], "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 80), "app": app}


async def _screen(app: FastAPI, path: str, **kw: Any) -> tuple[Passed, list[Message]]:
    """One request through the shortcut; the client leaves after the first body chunk."""
    inner, first_body = Passed(), asyncio.Event()
    sent: list[Message] = []
    requested = False

    async def receive() -> Message:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await first_body.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body":
            first_body.set()

    await asyncio.wait_for(LiveShortcut(inner)(_scope(app, path, **kw), receive, send), 30)
    return inner, sent


def test_an_anonymous_screen_is_served_by_the_live_handler_without_the_app_stack(
    app: FastAPI,
) -> None:
    """Catches the shortcut handing every screen to FastAPI (the cost issue 23 measured), or
    answering one with anything but the route's own stream."""
    inner, sent = asyncio.run(_screen(app, f"/v1/campaigns/{CAMPAIGN}/live"))
    assert inner.paths == []
    assert sent[0]["status"] == 200
    assert dict(sent[0]["headers"])[b"content-type"].startswith(b"text/event-stream")
    first = sent[1]["body"]
    assert first.startswith(b": connected\n\nevent: snapshot\ndata: ")
    assert b'"valid": 3' in first


@pytest.mark.parametrize(("path", "method", "headers"), [
    (f"/v1/campaigns/{PRIVATE}/live", "GET", []),  # private: the app's 401
    ("/v1/campaigns/no-such/live", "GET", []),  # unknown: the app's 404
    (f"/v1/campaigns/{CAMPAIGN}/live", "GET", [(b"authorization", ADMIN_BEARER)]),
    (f"/v1/campaigns/{CAMPAIGN}/live", "GET", [(b"cookie", b"si_session=x.y")]),
    (f"/v1/campaigns/{CAMPAIGN}/live", "POST", []),
    ("/v1/campaigns/bad id!/live", "GET", []),  # fails the route's pattern: the app's 422
    (f"/v1/campaigns/{CAMPAIGN}/leaderboard", "GET", []),
])
def test_anything_but_an_anonymous_allowed_screen_goes_to_the_app(
    app: FastAPI, path: str, method: str, headers: list[tuple[bytes, bytes]],
) -> None:
    """Catches the shortcut answering a refusal itself (a private campaign's stream served to
    anyone), or judging a credential it would then judge again (counted twice against the
    client's failure limit)."""
    inner, sent = asyncio.run(_screen(app, path, method=method, headers=headers))
    assert inner.paths == [path]
    assert sent[0]["status"] == 599


def test_a_screen_that_leaves_is_unsubscribed(app: FastAPI) -> None:
    """Catches a stream left subscribed (and counted as a screen) after its client went away:
    ten thousand screens coming and going would pile up queues."""
    before = REGISTRY.get_sample_value("survey_read_sse_clients")
    for _ in range(3):
        asyncio.run(_screen(app, f"/v1/campaigns/{CAMPAIGN}/live"))
    assert REGISTRY.get_sample_value("survey_read_sse_clients") == before


def test_a_quiet_stream_gets_keep_alives_from_one_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches a quiet stream left silent (a proxy would close it, and an ended token's stream
    would not be noticed): every screen of a campaign hears a keep-alive when nothing else was
    sent for KEEP_ALIVE_S."""
    monkeypatch.setattr(live_module, "KEEP_ALIVE_S", 0.05)
    reads = ReadModels(FixedCounts(), _registry())  # type: ignore[arg-type]

    async def two_screens() -> list[str]:
        snap = await reads.snapshot(CAMPAIGN)
        assert snap is not None
        live = LiveCounts(reads)
        streams = [live.stream(CAMPAIGN, snap) for _ in range(2)]
        try:
            firsts = [await anext(s) for s in streams]
            assert all(f.startswith(": connected") for f in firsts)
            return [await asyncio.wait_for(anext(s), 10) for s in streams]
        finally:
            for s in streams:
                await s.aclose()  # type: ignore[attr-defined]

    try:
        chunks = asyncio.run(two_screens())
    finally:
        reads.close()
    assert chunks == [": keep-alive\n\n"] * 2
    assert all(isinstance(c, SseText) and c.utf8 == c.encode() for c in chunks)


def test_a_view_is_compressed_once_per_tick_and_decodes_to_its_body(app: FastAPI) -> None:
    """Catches a snapshot view compressed again for every reader (the middleware's per-request
    cost), or compressed bytes that are not the view's body."""
    reads: ReadModels = app.state.reads

    async def twice() -> list[Any]:
        snap = await reads.snapshot(CAMPAIGN)
        assert snap is not None
        # The full definition: well over the kilobyte the middleware would compress from.
        view = snap.view(("campaign", "full"), full_campaign_content, scope="full")
        scope = _scope(app, f"/v1/campaigns/{CAMPAIGN}",
                       headers=[(b"accept-encoding", b"gzip, deflate, br")])
        return [view, *(respond(Request(scope), view) for _ in range(2))]

    view, first, second = asyncio.run(twice())
    assert len(view.body) >= 1024  # big enough that the middleware would compress it
    assert first.headers["content-encoding"] == "br"
    assert first.body is second.body
    assert brotli.decompress(first.body) == view.body
    assert first.headers["etag"] == view.etag
