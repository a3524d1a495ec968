"""Read models: per campaign, one snapshot of the counts per tick, from which every public read is
served (DESIGN principle 6).

One poller thread per process reads `Store.unit_counts` for each campaign being read, once per
tick (`interval_s`, at most 1 s), and swaps in a new `Snapshot`. A request never queries the
store for what a snapshot has: it takes the current snapshot and a view rendered from it. The
only store read a request can wait on is a campaign's very first one in this process, and that
one is shared (single flight): N requests arriving together cause one query.

Views are rendered once per snapshot and kept in it, keyed by what selects them — the route,
its parameters and the reader's scope (`None` for the public view). A token-scoped view
(CONTRACT §7, "scope") is rendered and cached under its scope key, e.g.
`("leaderboard", "unit", None, ("unit", "gd-cyber"))`, and sent `Cache-Control: private` (see
api/read_responses.py), so a public cache never holds it and two scopes never share an entry.

A campaign nobody has read for `idle_s` is dropped (snapshot and polling) so an idle process
costs the store nothing; its next reader waits for one fresh query.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from api import read_metrics
from api.compression import compress
from core.counting import Count
from core.ports import Store
from core.registry import CampaignState, Registry

log = logging.getLogger(__name__)

MAX_INTERVAL_S = 1.0


@dataclass(frozen=True)
class View:
    """One rendered response: the JSON body (with `as_of`) and its entity tag.

    The tag is weak and hashes the body *without* `as_of`: two ticks whose counts (and names,
    targets, ...) are the same give the same tag, so a client revalidating with If-None-Match
    gets 304 for as long as nothing it would see has changed (RFC 9110 §8.8.1: weak tags mark
    representations that are equivalent, not byte-identical)."""

    body: bytes
    etag: str
    private: bool = False
    # The body compressed per encoding, each made on first use: once per view and tick.
    encoded: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)

    def compressed(self, encoding: str) -> bytes:
        found = self.encoded.get(encoding)
        if found is None:
            found = self.encoded[encoding] = compress(self.body, encoding)
        return found


@dataclass
class Snapshot:
    """The counts of one campaign at `as_of` (taken just before the store was read) and the
    registry state they are shown with. Never changed once published; `views` only grows."""

    campaign: str
    state: CampaignState
    counts: Mapping[str, Count]
    as_of: dt.datetime
    seq: int
    views: dict[Hashable, View] = field(default_factory=dict)

    @property
    def as_of_text(self) -> str:
        return self.as_of.isoformat()

    def totals(self) -> dict[str, int]:
        return {
            "valid": sum(c.valid for c in self.counts.values()),
            "rejected": sum(c.rejected for c in self.counts.values()),
            "test": sum(c.test for c in self.counts.values()),
        }

    def view(
        self, key: Hashable, render: Callable[[Snapshot], dict[str, Any]], *,
        scope: Hashable = None,
    ) -> View:
        """The view `key` for `scope` (None: public), rendered on first use in this snapshot.
        `render` returns the body without `as_of`; it is added here."""
        full_key = (key, scope)
        found = self.views.get(full_key)
        if found is not None:
            read_metrics.VIEW_HITS.inc()
            return found
        # Two requests racing here both render (CPU only, same result); never a store query.
        read_metrics.VIEW_RENDERS.inc()
        content = render(self)
        made = render_view(content, self.as_of_text, private=scope is not None)
        self.views[full_key] = made
        return made


def render_view(content: dict[str, Any], as_of: str, *, private: bool = False) -> View:
    """`content` as a JSON body with `as_of` placed after `campaign` (or first), and its tag."""
    stable = _dumps(content)
    tag = 'W/"' + hashlib.blake2b(stable, digest_size=12).hexdigest() + '"'
    body: dict[str, Any] = {}
    for name, value in content.items():
        body[name] = value
        if name == "campaign":
            body["as_of"] = as_of
    if "as_of" not in body:
        body = {"as_of": as_of, **body}
    return View(_dumps(body), tag, private)


def _dumps(data: object) -> bytes:
    # Starlette's JSONResponse encoding: UTF-8, compact.
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


Listener = Callable[[Snapshot], None]


class ReadModels:
    """The snapshots of one process, and the poller thread that renews them."""

    def __init__(
        self, store: Store, registry: Registry, interval_s: float = 1.0, idle_s: float = 300.0
    ) -> None:
        self.store = store
        self.registry = registry
        self.interval_s = min(max(interval_s, 0.05), MAX_INTERVAL_S)
        self.idle_s = idle_s
        self._snapshots: dict[str, Snapshot] = {}
        self._last_read: dict[str, float] = {}
        self._listeners: dict[str, list[Listener]] = {}
        self._first: dict[str, asyncio.Future[Snapshot | None]] = {}
        self._lock = threading.Lock()
        self._seq = 0
        self._round_start = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        _LIVE.add(self)

    # --- what requests call -------------------------------------------------------------

    def current(self, campaign: str) -> Snapshot | None:
        """The snapshot held now, without waiting (None if there is none yet)."""
        return self._snapshots.get(campaign)

    async def snapshot(self, campaign: str) -> Snapshot | None:
        """The campaign's current snapshot; None for a campaign the registry does not know.

        Only the first read of a campaign in this process waits, for one shared store query."""
        if self.registry.get(campaign) is None:
            return None
        self._last_read[campaign] = time.monotonic()
        found = self._snapshots.get(campaign)
        if found is not None:
            return found
        loop = asyncio.get_running_loop()
        pending = self._first.get(campaign)
        if pending is None or pending.get_loop() is not loop:
            pending = loop.create_future()
            self._first[campaign] = pending
            try:
                made = await asyncio.to_thread(self._first_snapshot, campaign)
            except BaseException as exc:
                pending.set_exception(exc)
                pending.exception()  # retrieved: the waiters below re-raise their own copy
                self._first.pop(campaign, None)
                raise
            pending.set_result(made)
            self._first.pop(campaign, None)
            return made
        return await asyncio.shield(pending)

    def watch(self, campaign: str, listener: Listener) -> Callable[[], None]:
        """Call `listener(snapshot)` (on the poller thread) for each new snapshot of the
        campaign until the returned function is called. A watched campaign is never idle."""
        with self._lock:
            self._listeners.setdefault(campaign, []).append(listener)
        self._last_read[campaign] = time.monotonic()
        self._ensure_thread()

        def unwatch() -> None:
            with self._lock:
                listeners = self._listeners.get(campaign, [])
                if listener in listeners:
                    listeners.remove(listener)

        return unwatch

    async def refresh_now(self, campaign: str) -> None:
        """A new snapshot of the campaign now (one store query), sent to its live screens too:
        for a change this process made and its caller expects to see at once (a review
        decision moving counts). Others' changes show within a tick as always."""
        await asyncio.to_thread(self._refresh, campaign)

    def close(self) -> None:
        """Stop the poller (before the store is closed)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)

    # --- the poller ---------------------------------------------------------------------

    def _first_snapshot(self, campaign: str) -> Snapshot | None:
        made = self._refresh(campaign)
        self._ensure_thread()
        return made

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._stop.is_set() or (self._thread is not None and self._thread.is_alive()):
                return
            self._round_start = time.monotonic()
            self._thread = threading.Thread(
                target=self._run, name="read-models", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        # Started right after a first snapshot: the first round is one interval later.
        while not self._stop.wait(self.interval_s - (time.monotonic() - self._round_start)):
            self._round_start = time.monotonic()
            self.tick()

    def tick(self) -> None:
        """One round: renew every campaign being read, drop those idle for `idle_s`."""
        now = time.monotonic()
        for campaign in list(self._snapshots):
            with self._lock:
                watched = bool(self._listeners.get(campaign))
            if not watched and now - self._last_read.get(campaign, now) > self.idle_s:
                self._snapshots.pop(campaign, None)
                continue
            try:
                self._refresh(campaign)
            except Exception:
                # The previous snapshot stays, and says its age; the next tick tries again.
                read_metrics.POLL_FAILURES.inc()
                log.warning("read model poll of %r failed", campaign, exc_info=True)

    def _refresh(self, campaign: str) -> Snapshot | None:
        state = self.registry.get(campaign)
        if state is None:
            self._snapshots.pop(campaign, None)
            return None
        as_of = dt.datetime.now(dt.UTC)
        read_metrics.STORE_QUERIES.inc()
        counts = self.store.unit_counts(campaign)
        with self._lock:
            current = self._snapshots.get(campaign)
            if current is not None and current.as_of > as_of:
                return current  # a query started later already stands: never go back in time
            self._seq += 1
            made = Snapshot(campaign, state, dict(counts), as_of, self._seq)
            self._snapshots[campaign] = made
            listeners = list(self._listeners.get(campaign, ()))
        for listener in listeners:
            try:
                listener(made)
            except Exception:
                log.warning("read model listener failed", exc_info=True)
        return made

    def ages(self) -> dict[str, float]:
        """Seconds since each held snapshot's store read."""
        now = dt.datetime.now(dt.UTC)
        return {c: (now - s.as_of).total_seconds() for c, s in list(self._snapshots.items())}


# Every ReadModels of this process, for the snapshot-age metric (tests build several).
_LIVE: weakref.WeakSet[ReadModels] = weakref.WeakSet()
read_metrics.register_ages(lambda: [rm.ages() for rm in list(_LIVE)])


def audience(registry: Registry, campaign: str) -> str | None:
    """The cache scope of a crowd view: None (public, cacheable by anyone) unless the campaign
    keeps its leaderboard private, when every reader holds a token and the view is `private`.
    Decided on the registry as it is now (as access is), not on the snapshot's copy."""
    state = registry.get(campaign)
    private = state is None or state.definition.visibility.leaderboard == "private"
    return "private" if private else None
