"""Live count changes for display screens over SSE, fed by the read model snapshots.

A new connection's first event is rendered from the snapshot the process already holds (once
per snapshot, shared by every screen connecting in that tick): connecting costs no store query.
Each new snapshot whose counts differ from the last one sent becomes one `counts` event, rendered
once and put on every subscriber's queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from api import read_metrics
from api.read_views import live_event
from api.readmodel import ReadModels, Snapshot

KEEP_ALIVE_S = 15.0


class LiveCounts:
    def __init__(self, reads: ReadModels) -> None:
        self.reads = reads
        self._subscribers: dict[str, set[asyncio.Queue[str]]] = {}
        self._watching: dict[str, tuple[asyncio.AbstractEventLoop, Callable[[], None]]] = {}
        self._sent: dict[str, Snapshot] = {}
        self._first_event: dict[str, tuple[int, str]] = {}

    async def stream(self, campaign: str, first: Snapshot) -> AsyncIterator[str]:
        """The SSE stream of one screen; `first` is the snapshot the handler already took."""
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=100)
        self._subscribers.setdefault(campaign, set()).add(queue)
        self._watch(campaign, first)
        read_metrics.SSE_CLIENTS.inc()
        try:
            yield ": connected\n\n"
            yield self._snapshot_event(self.reads.current(campaign) or first)
            while True:
                try:
                    yield await asyncio.wait_for(queue.get(), timeout=KEEP_ALIVE_S)
                except TimeoutError:
                    yield ": keep-alive\n\n"  # keeps proxies from closing an idle stream
        finally:
            read_metrics.SSE_CLIENTS.dec()
            subscribers = self._subscribers.get(campaign, set())
            subscribers.discard(queue)
            if not subscribers:
                self._unwatch(campaign)

    def _snapshot_event(self, snap: Snapshot) -> str:
        cached = self._first_event.get(snap.campaign)
        if cached is not None and cached[0] == snap.seq:
            read_metrics.VIEW_HITS.inc()
            return cached[1]
        read_metrics.VIEW_RENDERS.inc()
        text = live_event(snap, "snapshot")
        self._first_event[snap.campaign] = (snap.seq, text)
        return text

    def _watch(self, campaign: str, first: Snapshot) -> None:
        loop = asyncio.get_running_loop()
        watching = self._watching.get(campaign)
        if watching is not None and watching[0] is loop:
            return
        if watching is not None:
            watching[1]()

        def on_snapshot(snap: Snapshot) -> None:  # on the poller thread
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._publish, campaign, snap)

        self._sent.setdefault(campaign, first)
        self._watching[campaign] = (loop, self.reads.watch(campaign, on_snapshot))

    def _unwatch(self, campaign: str) -> None:
        watching = self._watching.pop(campaign, None)
        if watching is not None:
            watching[1]()
        self._sent.pop(campaign, None)

    def _publish(self, campaign: str, snap: Snapshot) -> None:
        previous = self._sent.get(campaign)
        if previous is not None and (previous.seq >= snap.seq or previous.counts == snap.counts):
            return
        event = live_event(snap, "counts", previous.counts if previous else None)
        self._sent[campaign] = snap
        for queue in list(self._subscribers.get(campaign, ())):
            if queue.full():
                queue.get_nowait()  # a slow screen skips a frame, never blocks others
            queue.put_nowait(event)
