"""Which regions have crossed the campaign's threshold for a statistical report of their own."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from core.counting import Count, Level, roll_up
from core.registry import CampaignState

# The campaign notice: regions or topics with more than 50,000 valid samples get a report.
ELIGIBILITY_THRESHOLD: Final = 50_000


@dataclass(frozen=True)
class EligibleRegion:
    id: str
    name: str
    valid: int


def eligible_regions(
    state: CampaignState,
    unit_counts: Mapping[str, Count],
    level: Level,
    threshold: int = ELIGIBILITY_THRESHOLD,
) -> list[EligibleRegion]:
    """Entities of a level with more than `threshold` valid samples, most first."""
    totals = roll_up(state, unit_counts, level)
    found = []
    for entity_id, count in totals.items():
        if count.valid > threshold:
            found.append(EligibleRegion(entity_id, _name(state, level, entity_id), count.valid))
    found.sort(key=lambda r: (-r.valid, r.id))
    return found


def _name(state: CampaignState, level: Level, entity_id: str) -> str:
    if level == "unit":
        unit = state.units.get(entity_id)
        return unit.name if unit else entity_id
    if level == "province":
        prov = state.provinces.get(entity_id)
        return prov.name if prov else entity_id
    region = state.work_regions.get(entity_id)
    return region.name if region else entity_id


def eligible_topics(
    state: CampaignState,
    count: Callable[[str], int],
    threshold: int = ELIGIBILITY_THRESHOLD,
) -> list[EligibleRegion]:
    """Topics of the campaign file with more than `threshold` accepted sheets matching their
    filter (`count` runs reports.queries.valid_count_sql over the topic's scope), most first."""
    found = []
    for topic in state.definition.topics:
        n = count(topic.id)
        if n > threshold:
            found.append(EligibleRegion(topic.id, topic.name, n))
    found.sort(key=lambda r: (-r.valid, r.id))
    return found
