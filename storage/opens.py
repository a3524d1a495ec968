"""The link_opens table (migration 0012) over any SqlStore: answering-page loads per link and
day, added in batches by the serving processes and summed on read.

Kept apart from the verdicts' store logic like storage/findings.py: opens are not sheets and
share nothing with the counts but the connection (and its lock).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from storage import sql
from storage.base import SqlStore

COLUMNS: Final = ("campaign", "link_code", "unit", "channel", "day", "opens")
# What opens can be grouped and filtered by: a name outside these is refused (no caller text
# becomes SQL except through sql.literal).
DIMENSIONS: Final[Mapping[str, str]] = {
    "unit": "unit", "link": "link_code", "channel": "channel", "day": "day",
}


@dataclass(frozen=True)
class OpensRow:
    """One flushed tally: how many loads of a link's page on a day (campaign timezone)."""

    campaign: str
    link_code: str
    unit: str
    channel: str
    day: dt.date
    opens: int


def opens_query(
    campaign: str,
    by: Sequence[str],
    *,
    units: Sequence[str] | None = None,
    link: str | None = None,
    channel: str | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> str:
    """SELECT <group values...>, sum(opens); ValueError for a grouping it has no column for."""
    for name in by:
        if name not in DIMENSIONS:
            raise ValueError(f"opens cannot be grouped by {name!r}")
    where = [f"campaign = {sql.literal(campaign)}"]
    if units is not None:
        where.append(f"unit IN {sql.in_list(sorted(units))}" if units else "0")
    if link is not None:
        where.append(f"link_code = {sql.literal(link)}")
    if channel is not None:
        where.append(f"channel = {sql.literal(channel)}")
    if date_from is not None:
        where.append(f"day >= toDate({sql.literal(date_from)})")
    if date_to is not None:
        where.append(f"day <= toDate({sql.literal(date_to)})")
    aliases = [f"g{i}" for i in range(len(by))]
    select = [*(f"{DIMENSIONS[n]} AS {a}" for n, a in zip(by, aliases, strict=True)), "sum(opens)"]
    query = f"SELECT {', '.join(select)} FROM link_opens WHERE {' AND '.join(where)}"
    if aliases:
        query += f" GROUP BY {', '.join(aliases)}"
    return query


class SqlOpens:
    """Opens in the same database as the verdicts, through the store's connection."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def add_opens(self, rows: Sequence[OpensRow]) -> None:
        """Add tallies (not idempotent: each flush is new loads; the caller sends it once)."""
        values = [
            (r.campaign, r.link_code, r.unit, r.channel, r.day, r.opens) for r in rows if r.opens
        ]
        if values:
            with self.store._lock:
                self.store._insert("link_opens", COLUMNS, values)

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
    ) -> dict[tuple[str, ...], int]:
        """Summed opens per group of `by` (values as text, `day` as YYYY-MM-DD)."""
        query = opens_query(campaign, by, units=units, link=link, channel=channel,
                            date_from=date_from, date_to=date_to)
        with self.store._lock:
            rows = self.store._execute(query)
        width = len(by)
        return {tuple(str(v) for v in row[:width]): int(row[width]) for row in rows}
