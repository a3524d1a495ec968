"""Read side of reports: which regions have enough valid samples for a report of their own."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path

from api.services import Services
from reports import queries
from reports.eligibility import ELIGIBILITY_THRESHOLD, eligible_regions, eligible_topics

CampaignId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


def build_reports_router(services: Services) -> APIRouter:
    router = APIRouter(tags=["reports"])

    @router.get("/v1/campaigns/{campaign}/reports/eligible")
    async def eligible(campaign: CampaignId) -> dict[str, Any]:
        """Provinces, work regions and units with more than 50,000 valid samples (the
        campaign's threshold for a statistical report), from the live counts, most first; and
        the campaign file's topics past the same threshold (counted over their filters)."""
        state = services.registry.get(campaign)
        if state is None:
            raise HTTPException(404, f"unknown campaign {campaign!r}")
        counts = await asyncio.to_thread(services.store.unit_counts, campaign)
        topics = {t.id: t for t in state.definition.topics}

        def topic_count(topic_id: str) -> int:
            scope = queries.Scope(campaign, topic=topics[topic_id])
            return int(services.store.aggregate(queries.valid_count_sql(scope))[0][0])

        found = await asyncio.to_thread(eligible_topics, state, topic_count)
        return {
            "campaign": campaign,
            "threshold": ELIGIBILITY_THRESHOLD,
            **{
                f"{level}s": [
                    {"id": r.id, "name": r.name, "valid": r.valid}
                    for r in eligible_regions(state, counts, level)
                ]
                for level in ("province", "work_region", "unit")
            },
            "topics": [{"id": r.id, "name": r.name, "valid": r.valid} for r in found],
        }

    return router
