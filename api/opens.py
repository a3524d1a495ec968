"""Counting answering-page loads per link (CONTRACT §8 `opens`) at next to no cost on the page.

A load adds one to an in-memory tally keyed by (campaign, link code): one dict update on the
event loop, no I/O, no lock, no address kept. A background task moves the tally into the store
(`link_opens`, migration 0012) every `flush_s` seconds, attributing each link to its unit and
channel and the flush to a day in the campaign's timezone then. Reads add what this process
has not flushed yet, so its own figures are exact at once; another process's loads show up
after its next flush. A crash loses at most one interval's loads of that process: opens are a
funnel figure, not a count of sheets, and are never traded for page latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from core.ports import RegionFilter
from core.registry import CampaignState, Registry
from storage.opens import OpensRow

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (campaign, link code)


class OpensSink(Protocol):
    """Where tallies go and come back from (storage.opens.SqlOpens)."""

    def add_opens(self, rows: Sequence[OpensRow]) -> None: ...

    def opens_by(
        self,
        campaign: str,
        by: Sequence[str],
        *,
        units: Sequence[str] | None = None,
        link: str | None = None,
        channel: str | None = None,
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
    ) -> dict[tuple[str, ...], int]: ...


class OpenCounter:
    def __init__(self, registry: Registry, sink: OpensSink | None = None,
                 flush_s: float = 5.0) -> None:
        self.registry = registry
        self.sink = sink
        self.flush_s = flush_s
        self._pending: dict[Key, int] = {}
        # Taken from _pending and being written: still counted by reads until stored.
        self._in_flight: dict[Key, int] = {}
        self._flushing: asyncio.Lock | None = None

    def hit(self, campaign: str, link_code: str) -> None:
        """One page load. Called on the event loop (the page handler), so no lock is needed."""
        key = (campaign, link_code)
        self._pending[key] = self._pending.get(key, 0) + 1

    def _lock(self) -> asyncio.Lock:
        if self._flushing is None:
            self._flushing = asyncio.Lock()
        return self._flushing

    def _rows(self, tally: dict[Key, int], now: dt.datetime) -> list[OpensRow]:
        rows: list[OpensRow] = []
        for (campaign, code), n in tally.items():
            state = self.registry.get(campaign)
            link = state.links.get(code) if state else None
            if state is None or link is None:
                continue  # a link gone from the registry: nothing to credit it to
            day = now.astimezone(state.tz).date()
            rows.append(OpensRow(campaign, code, link.unit, link.channel, day, n))
        return rows

    async def flush(self) -> None:
        """Move the tally into the store; on failure it is kept and tried again next time."""
        if self.sink is None:
            return
        async with self._lock():
            if not self._pending:
                return
            self._in_flight, self._pending = self._pending, {}
            try:
                rows = self._rows(self._in_flight, dt.datetime.now(dt.UTC))
                await asyncio.to_thread(self.sink.add_opens, rows)
            except Exception:
                log.exception("opens not stored; kept for the next flush")
                for key, n in self._in_flight.items():
                    self._pending[key] = self._pending.get(key, 0) + n
            self._in_flight = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every flush_s until `stop`, then once more."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.flush_s)
            await self.flush()

    async def per_link(self, campaign: str, units: Sequence[str] | None = None) -> dict[str, int]:
        """Opens per link code of the campaign (of these units), stored plus not yet stored."""
        return {k[0]: n for k, n in (await self.grouped(campaign, ["link"], units=units)).items()}

    async def grouped(
        self, campaign: str, by: Sequence[str], *, units: Sequence[str] | None = None,
        link: str | None = None, channel: str | None = None,
        date_from: dt.date | None = None, date_to: dt.date | None = None,
    ) -> dict[tuple[str, ...], int]:
        """Opens per group of `by` (unit, link, channel, day), stored plus this process's
        unflushed tally, read under the flush lock so no load is seen twice or missed."""
        async with self._lock():
            stored: dict[tuple[str, ...], int] = {}
            if self.sink is not None:
                stored = await asyncio.to_thread(
                    self.sink.opens_by, campaign, by, units=units, link=link, channel=channel,
                    date_from=date_from, date_to=date_to)
            mine = {k: n for k, n in self._pending.items() if k[0] == campaign}
            now = dt.datetime.now(dt.UTC)
            for row in self._rows(mine, now):
                if (
                    (units is not None and row.unit not in units)
                    or (link is not None and row.link_code != link)
                    or (channel is not None and row.channel != channel)
                    or (date_from is not None and row.day < date_from)
                    or (date_to is not None and row.day > date_to)
                ):
                    continue
                names = {"unit": row.unit, "link": row.link_code, "channel": row.channel,
                         "day": row.day.isoformat()}
                key = tuple(names[n] for n in by)
                stored[key] = stored.get(key, 0) + row.opens
            return stored


# What /counts can add opens to: groupings the opens table has, and filters it has or that the
# registry turns into a set of units (province, work region). Others (respondent's province,
# phase, ...) describe sheets, not page loads: those answers carry no `opens`.
OPENS_GROUPS = ("unit", "link", "channel", "day")
_OPENS_FILTERS = ("unit", "link", "channel", "province", "work_region", "date_from", "date_to")


async def with_opens(
    counter: OpenCounter, state: CampaignState, by: Sequence[str], filters: RegionFilter,
    rows: list[dict[str, Any]],
) -> list[dict[str, Any]] | None:
    """`rows` (of /counts) with `opens` on each, and a row for each group that was opened but
    has no sheet yet; None when the grouping or a filter has no meaning for page loads."""
    given = filters.given()
    if any(n not in OPENS_GROUPS for n in by) or any(f not in _OPENS_FILTERS for f in given):
        return None
    units: list[str] | None = None
    if filters.unit is not None or filters.province is not None or filters.work_region is not None:
        units = [
            u.id for u in state.units.values()
            if (filters.unit is None or u.id == filters.unit)
            and (filters.province is None or u.province == filters.province)
            and (filters.work_region is None or (
                u.province in state.provinces
                and state.provinces[u.province].work_region == filters.work_region))
        ]
    opened = await counter.grouped(
        state.definition.campaign, by, units=units, link=filters.link, channel=filters.channel,
        date_from=filters.date_from, date_to=filters.date_to)
    out = []
    for row in rows:
        key = tuple("" if row[n] is None else str(row[n]) for n in by)
        out.append({**row, "opens": opened.pop(key, 0)})
    for key, n in opened.items():
        group = {name: (value or None) for name, value in zip(by, key, strict=True)}
        out.append({**group, "valid": 0, "rejected": 0, "test": 0, "conflicts": 0, "opens": n})
    out.sort(key=lambda r: tuple("" if r[n] is None else str(r[n]) for n in by))
    return out
