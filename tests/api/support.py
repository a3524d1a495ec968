"""What the read-side tests share: a store that counts its queries at the Store port (around
the real chDB store, not a mock), verdict rows, and the API served by uvicorn on a free port in a
thread of the test process (so SSE streams and concurrent clients are real HTTP)."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from api.app import build_api
from api.services import Services
from core.counting import Count
from core.ports import Store
from core.registry import Registry
from schemas.campaign import CampaignDefinition
from schemas.events import CampaignDefined, SubmissionJudged
from tests.helpers import campaign_definition
from tests.integration.embedded_server import free_port

CAMPAIGN = "rs"


class CountingStore:
    """The real store, with `unit_counts` (what a read model snapshot reads) counted."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self.unit_count_queries = 0

    def unit_counts(self, campaign: str) -> dict[str, Count]:
        with self._lock:
            self.unit_count_queries += 1
        return self._store.unit_counts(campaign)

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


def registry_with(campaign: str = CAMPAIGN) -> Registry:
    registry = Registry()
    definition = CampaignDefinition.model_validate(campaign_definition(campaign))
    registry.apply(CampaignDefined(
        campaign=campaign, defined_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
        definition=definition,
    ))
    return registry


def verdict(campaign: str = CAMPAIGN, unit: str = "gd-cyber", link: str = "Gd7kQ2xP",
            province: str = "44", work_region: str = "south") -> SubmissionJudged:
    now = dt.datetime.now(dt.UTC)
    sid = str(uuid.uuid4())
    return SubmissionJudged(
        submission_id=sid, campaign=campaign, fingerprint=f"fp-{sid}", source_position=f"0:{sid}",
        received_at=now, status="accepted", rules_version="r1", phase="collection",
        link_code=link, unit=unit, province=province, work_region=work_region, channel="wechat",
        questionnaire_version="2023.1", respondent_province=province, respondent_city="",
        age_group="25-34", started_at=now - dt.timedelta(minutes=9),
        submitted_at=now - dt.timedelta(seconds=2), duration_seconds=538.0,
        device_hash=f"dev-{sid}", client="c1", answers_json='{"q1": 4, "q2": "b"}', opinion="",
    )


ADMIN_TOKEN = "read-side-admin"
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}


def build(store: CountingStore, registry: Registry, interval_s: float = 1.0) -> FastAPI:
    async def define(definition: CampaignDefinition) -> None:
        return None

    services = Services(
        registry=registry, store=store,  # type: ignore[arg-type]  # the Store's other methods
        admin_token=ADMIN_TOKEN, define_campaign=define, ready=lambda: True,
        live_interval_s=interval_s,
    )
    return build_api(services)


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """The app under uvicorn on 127.0.0.1:<free port>; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="off", log_level="warning", access_log=False,
    ))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the test API did not come up in 30 s")
        time.sleep(0.05)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        app.state.reads.close()


def get_many(base: str, paths: list[str], headers: dict[str, str] | None = None
             ) -> list[httpx.Response]:
    """All `paths` requested at once over as many connections."""
    async def run() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=len(paths))
        async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
            return list(await asyncio.gather(*(client.get(p, headers=headers) for p in paths)))

    return asyncio.run(run())


def first_event(base: str, path: str) -> dict[str, Any]:
    """The first `data:` of an SSE stream, parsed, and its event name."""
    import json

    with httpx.stream("GET", f"{base}{path}", timeout=30) as r:
        assert r.status_code == 200, r.read()
        name = ""
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                return {"event": name, **json.loads(line[6:])}
    raise AssertionError("the stream ended before its first event")
