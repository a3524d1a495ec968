"""Live count changes for display screens over SSE, fed by the read model snapshots.

A new connection's first write (the `connected` comment and the snapshot event, together) is
rendered and UTF-8 encoded once per snapshot and shared by every screen connecting in that tick:
connecting costs no store query and no JSON work. Each new snapshot whose counts differ from the
last one sent becomes one `counts` event, rendered and encoded once and put on every
subscriber's queue. Keep-alives are one timer per campaign, not one per screen: a screen's
stream waits on its queue alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from api import read_metrics
from api.read_views import live_event
from api.readmodel import ReadModels, Snapshot

KEEP_ALIVE_S = 15.0
QUEUE_SIZE = 100


class SseText(str):
    """A chunk of the stream with its UTF-8 bytes encoded once (`utf8`), for every screen it
    goes to. A str, so anything that passes the stream's chunks along keeps working."""

    utf8: bytes

    def __new__(cls, text: str) -> SseText:
        made = super().__new__(cls, text)
        made.utf8 = text.encode()
        return made


CONNECTED = ": connected\n\n"
KEEP_ALIVE = SseText(": keep-alive\n\n")  # keeps proxies from closing an idle stream


def utf8(chunk: str | bytes | memoryview) -> bytes:
    """A chunk's bytes: those encoded once if it carries them."""
    if isinstance(chunk, str):
        return chunk.utf8 if isinstance(chunk, SseText) else chunk.encode()
    return bytes(chunk)


class LiveCounts:
    def __init__(self, reads: ReadModels) -> None:
        self.reads = reads
        # None in a screen's queue ends its stream (end_all).
        self._subscribers: dict[str, set[asyncio.Queue[str | None]]] = {}
        self._watching: dict[str, tuple[asyncio.AbstractEventLoop, Callable[[], None]]] = {}
        self._sent: dict[str, Snapshot] = {}
        self._first_event: dict[str, tuple[int, SseText]] = {}
        self._last_sent: dict[str, float] = {}
        self._keep_alive: dict[str, asyncio.TimerHandle] = {}
        self._ended = False

    async def stream(self, campaign: str, first: Snapshot) -> AsyncIterator[str]:
        """The SSE stream of one screen; `first` is the snapshot the handler already took."""
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self._subscribers.setdefault(campaign, set()).add(queue)
        self._watch(campaign, first)
        read_metrics.SSE_CLIENTS.inc()
        try:
            yield self._first_write(self.reads.current(campaign) or first)
            while not self._ended:
                chunk = await queue.get()
                if chunk is None:
                    return
                yield chunk
        finally:
            read_metrics.SSE_CLIENTS.dec()
            subscribers = self._subscribers.get(campaign, set())
            subscribers.discard(queue)
            if not subscribers:
                self._unwatch(campaign)

    def end_all(self) -> None:
        """Ends every open stream, for a server that is stopping: uvicorn's shutdown waits for
        each response to finish, and an event stream never does, so one connected screen kept
        the process from stopping until it was killed. A screen's EventSource reconnects by
        itself, to another instance or to this one once it is back. Call on the streams' loop."""
        self._ended = True
        for queues in self._subscribers.values():
            for queue in queues:
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(None)

    def _first_write(self, snap: Snapshot) -> SseText:
        cached = self._first_event.get(snap.campaign)
        if cached is not None and cached[0] == snap.seq:
            read_metrics.VIEW_HITS.inc()
            return cached[1]
        read_metrics.VIEW_RENDERS.inc()
        text = SseText(CONNECTED + live_event(snap, "snapshot"))
        self._first_event[snap.campaign] = (snap.seq, text)
        return text

    def _watch(self, campaign: str, first: Snapshot) -> None:
        loop = asyncio.get_running_loop()
        watching = self._watching.get(campaign)
        if watching is not None and watching[0] is loop:
            return
        if watching is not None:
            self._unwatch(campaign)

        def on_snapshot(snap: Snapshot) -> None:  # on the poller thread
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._publish, campaign, snap)

        self._sent.setdefault(campaign, first)
        self._watching[campaign] = (loop, self.reads.watch(campaign, on_snapshot))
        self._last_sent[campaign] = loop.time()
        self._keep_alive[campaign] = loop.call_at(
            loop.time() + KEEP_ALIVE_S, self._keep_alive_due, campaign
        )

    def _unwatch(self, campaign: str) -> None:
        watching = self._watching.pop(campaign, None)
        if watching is not None:
            watching[1]()
        timer = self._keep_alive.pop(campaign, None)
        if timer is not None:
            timer.cancel()
        self._sent.pop(campaign, None)
        self._last_sent.pop(campaign, None)

    def _publish(self, campaign: str, snap: Snapshot) -> None:
        previous = self._sent.get(campaign)
        if previous is not None and (previous.seq >= snap.seq or previous.counts == snap.counts):
            return
        self._sent[campaign] = snap
        self._broadcast(campaign, SseText(
            live_event(snap, "counts", previous.counts if previous else None)
        ))

    def _keep_alive_due(self, campaign: str) -> None:
        """A keep-alive to every screen of the campaign when nothing was sent for KEEP_ALIVE_S,
        so each screen hears something at least that often (an ended token's stream is
        noticed then, see api/app.py)."""
        watching = self._watching.get(campaign)
        if watching is None:
            return
        loop = watching[0]
        due = self._last_sent.get(campaign, 0.0) + KEEP_ALIVE_S
        if loop.time() >= due:
            self._broadcast(campaign, KEEP_ALIVE)
            due = loop.time() + KEEP_ALIVE_S
        self._keep_alive[campaign] = loop.call_at(due, self._keep_alive_due, campaign)

    def _broadcast(self, campaign: str, chunk: str) -> None:
        if self._ended:
            return  # never push an ended stream's None out of its queue
        watching = self._watching.get(campaign)
        if watching is not None:
            self._last_sent[campaign] = watching[0].time()
        for queue in list(self._subscribers.get(campaign, ())):
            if queue.full():
                queue.get_nowait()  # a slow screen skips a frame, never blocks others
            queue.put_nowait(chunk)
