"""What counting opens costs the answering page (/s/{code}, api/pages.py): the page handler
driven in process over ASGI (no network, no server: the handler's own cost is what counting
adds to), with the counter on (OpenCounter.hit, as served) and off (hit replaced by a no-op:
the page before opens were counted), batch by batch alternating, in CPU time per page (the
machine is shared; wall time would measure the neighbours); OpenCounter.hit alone; and a
flush of 10,000 links' tallies into chDB (the background work that replaces a write per view).

    python -m benchmarks.bench_opens [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from api.app import build_api
from api.opens import OpenCounter
from api.services import Services
from core.registry import LinkState, Registry
from schemas.campaign import CampaignDefinition, load_campaign_file
from schemas.events import CampaignDefined
from simulation import EXAMPLE_CAMPAIGN


def _registry() -> tuple[Registry, str, list[str]]:
    definition = load_campaign_file(EXAMPLE_CAMPAIGN)
    today = dt.date.today()
    data = definition.model_dump(mode="json")
    data["phases"] = [{"name": "collection", "start": str(today - dt.timedelta(days=1)),
                       "end": str(today + dt.timedelta(days=9)), "counts": True}]
    definition = CampaignDefinition.model_validate(data)
    registry = Registry()
    registry.apply(CampaignDefined(campaign=definition.campaign,
                                   defined_at=dt.datetime.now(dt.UTC), definition=definition))
    return registry, definition.campaign, [lk.code for lk in definition.links if not lk.revoked]


async def _batch(client: httpx.AsyncClient, codes: list[str], n: int, offset: int) -> float:
    """CPU seconds per page for n page loads (process time: the machine is shared, and
    other processes' load would otherwise land in the figure as waiting)."""
    start = time.process_time()
    for i in range(n):
        r = await client.post(f"/s/{codes[(offset + i) % len(codes)]}/open")
        assert r.status_code == 200
    return (time.process_time() - start) / n


async def page_path(batches: int, per_batch: int) -> dict[str, Any]:
    registry, _, codes = _registry()
    services = Services(registry=registry, store=None,  # type: ignore[arg-type]  # unused here
                        admin_token="", define_campaign=None,  # type: ignore[arg-type]
                        ready=lambda: True)
    counter = services.open_counter
    app = build_api(services)
    real_hit = counter.hit
    per: dict[str, list[float]] = {"on": [], "off": []}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://bench") as client:
        await _batch(client, codes, 200, 0)  # warm-up
        # Counter on and off alternate batch by batch, so drift falls on both alike.
        for b in range(batches):
            for mode in (("off", "on") if b % 2 else ("on", "off")):
                counter.hit = real_hit if mode == "on" else (lambda c, k: None)  # type: ignore[method-assign, assignment]
                per[mode].append(await _batch(client, codes, per_batch, b * per_batch))
    on, off = statistics.median(per["on"]), statistics.median(per["off"])
    return {"page_cpu_us_counted": round(on * 1e6, 1), "page_cpu_us_uncounted": round(off * 1e6, 1),
            "added_us": round((on - off) * 1e6, 2), "added_pct": round(100 * (on - off) / off, 2),
            "batches": batches, "pages_per_batch": per_batch,
            "tallied": sum(counter._pending.values())}


def hit_alone(n: int) -> dict[str, Any]:
    counter = OpenCounter(Registry())
    keys = [("c", f"code{i:05d}") for i in range(10_000)]
    start = time.process_time()
    for i in range(n):
        counter.hit(*keys[i % 10_000])
    hit = time.process_time() - start
    start = time.process_time()
    for i in range(n):
        keys[i % 10_000]  # the loop and the key lookup alone
    loop = time.process_time() - start
    return {"hit_ns": round((hit - loop) / n * 1e9, 1), "hits": n}


async def flush_into_chdb(links: int) -> dict[str, Any]:
    from storage import open_store
    from storage.opens import SqlOpens

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"chdb://{Path(tmp) / 'chdb'}")
        store.migrate()
        registry, campaign, codes = _registry()
        state = registry.get(campaign)
        assert state is not None
        counter = OpenCounter(registry, SqlOpens(store))
        unit = next(iter(state.units))
        extra = [f"B{i:07d}" for i in range(links - len(codes))]
        state.links.update({c: LinkState(c, unit, "wechat") for c in extra})
        for code in (codes + extra)[:links]:
            for _ in range(3):
                counter.hit(campaign, code)
        start = time.perf_counter()
        await counter.flush()
        elapsed = time.perf_counter() - start
        total = sum((await counter.per_link(campaign)).values())
        store.close()
    return {"flush_ms": round(elapsed * 1e3, 1), "links": links, "opens_read_back": total}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    batches = 6 if args.quick else 30
    report = {
        "page_path": asyncio.run(page_path(batches, 200)),
        "hit": hit_alone(200_000 if args.quick else 2_000_000),
        "flush": asyncio.run(flush_into_chdb(10_000)),
    }
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
