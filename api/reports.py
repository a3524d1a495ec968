"""Read side of reports: which regions have enough valid samples for a report of their own."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException

from api.deps import ANALYSIS, Access, CampaignId, scoped_read
from api.services import Services
from reports import queries
from reports.eligibility import ELIGIBILITY_THRESHOLD, eligible_regions, eligible_topics


def build_reports_router(services: Services) -> APIRouter:
    router = APIRouter(tags=["reports"])

    @router.get("/v1/campaigns/{campaign}/reports/eligible")
    async def eligible(
        campaign: CampaignId, access: Annotated[Access, scoped_read(ANALYSIS)]
    ) -> dict[str, Any]:
        """Provinces, work regions and units with more than 50,000 valid samples (the
        campaign's threshold for a statistical report), from the live counts, most first; a
        coordinator sees those in its work region. And the campaign file's topics past the same
        threshold (counted over their filters): campaign-wide, so only for unscoped callers."""
        state = services.registry.get(campaign)
        if state is None:
            raise HTTPException(404, f"unknown campaign {campaign!r}")
        counts = await asyncio.to_thread(services.store.unit_counts, campaign)
        units = access.units_in_scope()

        def sees_unit(unit: str) -> bool:
            return units is None or unit in units

        seen = {
            "province": access.sees_province, "work_region": access.sees_region,
            "unit": sees_unit,
        }
        topics = {t.id: t for t in state.definition.topics}

        def topic_count(topic_id: str) -> int:
            scope = queries.Scope(campaign, topic=topics[topic_id])
            return int(services.store.aggregate(queries.valid_count_sql(scope))[0][0])

        found = [] if access.scope else await asyncio.to_thread(
            eligible_topics, state, topic_count)
        return {
            "campaign": campaign,
            "threshold": ELIGIBILITY_THRESHOLD,
            "scope": access.scope,
            **{
                f"{level}s": [
                    {"id": r.id, "name": r.name, "valid": r.valid}
                    for r in eligible_regions(state, counts, level) if seen[level](r.id)
                ]
                for level in ("province", "work_region", "unit")
            },
            "topics": [{"id": r.id, "name": r.name, "valid": r.valid} for r in found],
        }

    return router
