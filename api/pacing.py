"""Pacing: where every unit, province and work region stands against what it should have by now."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response

from api.deps import CampaignId, crowd
from api.read_responses import respond
from api.read_views import pacing_content
from api.readmodel import ReadModels, audience
from api.services import Services


def build_pacing_router(services: Services, models: ReadModels) -> APIRouter:
    router = APIRouter(tags=["reads"])

    @router.get("/v1/campaigns/{campaign}/pacing", dependencies=[crowd()])
    async def get_pacing(
        campaign: CampaignId,
        request: Request,
        level: Literal["unit", "province", "work_region"] = "province",
        limit: Annotated[int | None, Query(ge=1, le=10000)] = None,
    ) -> Response:
        """Per entity: valid samples, target, `expected` (due by now: linear over counting
        days, see `method`), `gap` (valid - expected), `status` ahead/behind, and
        `needed_per_day` to reach the target; furthest behind first. Provisional like every
        live figure. From this tick's snapshot (`as_of`, the moment "now" is judged at)."""
        snap = await models.snapshot(campaign)
        if snap is None:
            raise HTTPException(404, f"unknown campaign {campaign!r}")
        return respond(request, snap.view(("pacing", level, limit), pacing_content(level, limit),
                                          scope=audience(services.registry, campaign)))

    return router
