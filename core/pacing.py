"""Pacing: how many valid samples a unit or region should have by now to reach its target on time.

The plan is linear over counting time: the counting days are the days of every phase with
`counts: true` (campaign timezone, dates inclusive), each worth the same share of the target, and
within a counting day the share accrues evenly by the clock. So on day 4 of 10 at noon, the
amount due is 3.5/10 of the target. Days outside counting phases (gaps between phases) add
nothing. Before the first counting day nothing is due; after the last, all of it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from core.counting import Count, Level, _name_and_target, roll_up
from core.registry import CampaignState
from schemas.campaign import CampaignDefinition

METHOD = (
    "linear over counting days: each day of a phase with counts: true (campaign timezone) is an"
    " equal share of the target, accruing evenly through the day"
)
PaceStatus = Literal["ahead", "behind"]


def counting_days(definition: CampaignDefinition) -> list[dt.date]:
    days: set[dt.date] = set()
    for phase in definition.phases:
        if phase.counts:
            n = (phase.end - phase.start).days + 1
            days.update(phase.start + dt.timedelta(days=i) for i in range(n))
    return sorted(days)


def elapsed_days(days: list[dt.date], now_local: dt.datetime) -> float:
    """Counting days gone by at `now_local` (in the campaign's timezone), today's part included."""
    today = now_local.date()
    done = sum(1 for d in days if d < today)
    if today in days:
        midnight = now_local.replace(hour=0, minute=0, second=0, microsecond=0)
        done_today = (now_local - midnight).total_seconds() / 86400
        return done + min(1.0, max(0.0, done_today))
    return float(done)


@dataclass(frozen=True)
class Window:
    first_day: dt.date | None
    last_day: dt.date | None
    counting_days: int
    elapsed_days: float

    @property
    def share(self) -> float:
        """The fraction of every target due by now."""
        return self.elapsed_days / self.counting_days if self.counting_days else 0.0

    @property
    def remaining_days(self) -> float:
        return max(0.0, self.counting_days - self.elapsed_days)


def window(state: CampaignState, now: dt.datetime) -> Window:
    days = counting_days(state.definition)
    local = now.astimezone(state.tz)
    return Window(
        first_day=days[0] if days else None,
        last_day=days[-1] if days else None,
        counting_days=len(days),
        elapsed_days=round(elapsed_days(days, local), 6),
    )


@dataclass(frozen=True)
class PaceRow:
    id: str
    name: str
    valid: int
    target: int
    expected: int  # valid samples due by now (rounded down)
    gap: int  # valid - expected: above 0 ahead, below 0 behind
    status: PaceStatus
    # Valid samples per remaining counting day still needed to reach the target (None when
    # no counting day is left).
    needed_per_day: int | None


def pace(target: int, valid: int, win: Window) -> tuple[int, int, PaceStatus, int | None]:
    expected = math.floor(target * win.share + 1e-9)
    gap = valid - expected
    remaining = win.remaining_days
    needed = math.ceil(max(0, target - valid) / remaining) if remaining > 0 else None
    return expected, gap, "ahead" if gap >= 0 else "behind", needed


def pacing(
    state: CampaignState, unit_counts: Mapping[str, Count], level: Level, now: dt.datetime
) -> tuple[Window, list[PaceRow]]:
    """Every entity of the level, furthest behind its due amount first (then by id)."""
    win = window(state, now)
    rows = []
    for entity_id, count in roll_up(state, unit_counts, level).items():
        name, target = _name_and_target(state, level, entity_id)
        expected, gap, status, needed = pace(target, count.valid, win)
        rows.append(PaceRow(entity_id, name, count.valid, target, expected, gap, status, needed))
    rows.sort(key=lambda r: (r.gap, r.id))
    return win, rows
