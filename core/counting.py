"""Counting verdicts and turning unit counts into the three leaderboards.

Counts are kept per unit only; province and work-region figures are always rolled up from their
units, so a region's total can never disagree with the sum of its parts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from core.registry import CampaignState
from schemas.events import SubmissionJudged

Level = Literal["unit", "province", "work_region"]
LEVELS: tuple[Level, ...] = ("unit", "province", "work_region")


@dataclass
class Count:
    valid: int = 0
    rejected: int = 0
    test: int = 0

    def add(self, other: Count) -> None:
        self.valid += other.valid
        self.rejected += other.rejected
        self.test += other.test


class Tally:
    """Per-unit counts of verdicts, each submission counted once (the caller drops resends)."""

    def __init__(self) -> None:
        self.units: dict[tuple[str, str], Count] = {}

    def apply(self, judged: SubmissionJudged) -> tuple[str, str] | None:
        if not judged.unit:
            return None  # no link, no unit to credit; still stored and queryable
        key = (judged.campaign, judged.unit)
        count = self.units.setdefault(key, Count())
        if judged.status == "accepted":
            count.valid += 1
        elif judged.status == "rejected":
            count.rejected += 1
        else:
            count.test += 1
        return key

    def for_campaign(self, campaign: str) -> dict[str, Count]:
        return {unit: c for (camp, unit), c in self.units.items() if camp == campaign}


def tally(verdicts: Iterable[SubmissionJudged]) -> Tally:
    t = Tally()
    for v in verdicts:
        t.apply(v)
    return t


def roll_up(
    state: CampaignState, unit_counts: Mapping[str, Count], level: Level
) -> dict[str, Count]:
    """Counts for every entity of a level (zero where nothing came in yet)."""
    if level == "unit":
        ids: Iterable[str] = state.units
    elif level == "province":
        ids = state.provinces
    else:
        ids = state.work_regions
    totals = {i: Count() for i in ids}
    for unit_id, count in unit_counts.items():
        unit = state.units.get(unit_id)
        if unit is None:
            continue
        if level == "unit":
            key = unit_id
        elif level == "province":
            key = unit.province
        else:
            key = state.provinces[unit.province].work_region
        totals.setdefault(key, Count()).add(count)
    return totals


@dataclass(frozen=True)
class LeaderboardRow:
    rank: int
    id: str
    name: str
    valid: int
    rejected: int
    target: int
    progress: float


def leaderboard(
    state: CampaignState, unit_counts: Mapping[str, Count], level: Level, limit: int | None = None
) -> list[LeaderboardRow]:
    """Units ranked by valid samples; provinces and work regions by progress against target.

    Ties share a rank (standard competition ranking: 1, 2, 2, 4) and are listed by id.
    """
    totals = roll_up(state, unit_counts, level)
    entries = []
    for entity_id, count in totals.items():
        name, target = _name_and_target(state, level, entity_id)
        progress = round(count.valid / target, 6) if target > 0 else 0.0
        entries.append((entity_id, name, count, target, progress))

    def score(e: tuple[str, str, Count, int, float]) -> float:
        return float(e[2].valid) if level == "unit" else e[4]

    entries.sort(key=lambda e: (-score(e), e[0]))
    rows: list[LeaderboardRow] = []
    rank = 0
    previous: float | None = None
    for position, (entity_id, name, count, target, progress) in enumerate(entries, start=1):
        s = score((entity_id, name, count, target, progress))
        if s != previous:
            rank, previous = position, s
        rows.append(
            LeaderboardRow(rank, entity_id, name, count.valid, count.rejected, target, progress)
        )
    return rows[:limit] if limit is not None else rows


def _name_and_target(state: CampaignState, level: Level, entity_id: str) -> tuple[str, int]:
    if level == "unit":
        unit = state.units.get(entity_id)
        return (unit.name, unit.planned_samples) if unit else (entity_id, 0)
    if level == "province":
        prov = state.provinces.get(entity_id)
        return (prov.name, prov.target) if prov else (entity_id, 0)
    region = state.work_regions.get(entity_id)
    return (region.name if region else entity_id, state.work_region_target(entity_id))
