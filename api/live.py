"""Live count changes for display screens: one poller per campaign fans out to every SSE client."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator

from core.counting import LEVELS, Count, leaderboard
from core.ports import Store
from core.registry import Registry


class LiveCounts:
    def __init__(self, store: Store, registry: Registry, interval_s: float = 1.0) -> None:
        self.store = store
        self.registry = registry
        self.interval_s = interval_s
        self._subscribers: dict[str, set[asyncio.Queue[str]]] = {}
        self._pollers: dict[str, asyncio.Task[None]] = {}

    async def stream(self, campaign: str) -> AsyncIterator[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=100)
        self._subscribers.setdefault(campaign, set()).add(queue)
        if campaign not in self._pollers or self._pollers[campaign].done():
            self._pollers[campaign] = asyncio.create_task(self._poll(campaign))
        try:
            yield ": connected\n\n"
            yield self._snapshot_event(campaign, await self._counts(campaign), "snapshot")
            while True:
                try:
                    yield await asyncio.wait_for(queue.get(), timeout=15)
                except TimeoutError:
                    yield ": keep-alive\n\n"  # keeps proxies from closing an idle stream
        finally:
            self._subscribers[campaign].discard(queue)

    async def _counts(self, campaign: str) -> dict[str, Count]:
        return await asyncio.to_thread(self.store.unit_counts, campaign)

    async def _poll(self, campaign: str) -> None:
        previous = await self._counts(campaign)
        while self._subscribers.get(campaign):
            await asyncio.sleep(self.interval_s)
            with contextlib.suppress(Exception):  # a failed poll is retried on the next tick
                current = await self._counts(campaign)
                if current != previous:
                    event = self._snapshot_event(campaign, current, "counts", previous)
                    for queue in list(self._subscribers.get(campaign, ())):
                        if queue.full():
                            queue.get_nowait()  # a slow screen skips a frame, never blocks others
                        queue.put_nowait(event)
                    previous = current

    def _snapshot_event(
        self,
        campaign: str,
        counts: dict[str, Count],
        name: str,
        previous: dict[str, Count] | None = None,
    ) -> str:
        state = self.registry.get(campaign)
        payload: dict[str, object] = {
            "campaign": campaign,
            "as_of": dt.datetime.now(dt.UTC).isoformat(),
            "provisional": True,  # live figures; the final ranking is `campaign freeze`
            "totals": {
                "valid": sum(c.valid for c in counts.values()),
                "rejected": sum(c.rejected for c in counts.values()),
                "test": sum(c.test for c in counts.values()),
            },
        }
        if previous is not None:
            payload["changed_units"] = sorted(u for u in counts if counts[u] != previous.get(u))
        if state is not None:
            payload["leaderboards"] = {
                level: [r.__dict__ for r in leaderboard(state, counts, level)] for level in LEVELS
            }
        return f"event: {name}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"
