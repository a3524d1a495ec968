"""Pacing: where every unit, province and work region stands against what it should have by now."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query

from api.deps import CampaignId, crowd
from api.services import Services
from core.pacing import METHOD, pacing


def build_pacing_router(services: Services) -> APIRouter:
    router = APIRouter(tags=["reads"])

    @router.get("/v1/campaigns/{campaign}/pacing", dependencies=[crowd()])
    async def get_pacing(
        campaign: CampaignId,
        level: Literal["unit", "province", "work_region"] = "province",
        limit: Annotated[int | None, Query(ge=1, le=10000)] = None,
    ) -> dict[str, Any]:
        """Per entity: valid samples, target, `expected` (due by now: linear over counting
        days, see `method`), `gap` (valid - expected), `status` ahead/behind, and
        `needed_per_day` to reach the target; furthest behind first. Provisional like every
        live figure."""
        state = services.registry.get(campaign)
        if state is None:
            raise HTTPException(404, f"unknown campaign {campaign!r}")
        counts = await asyncio.to_thread(services.store.unit_counts, campaign)
        now = dt.datetime.now(dt.UTC)
        win, rows = pacing(state, counts, level, now)
        selected = rows[:limit] if limit is not None else rows
        return {
            "campaign": campaign, "level": level, "as_of": now.isoformat(),
            "provisional": True, "method": METHOD,
            "window": {
                "first_day": win.first_day.isoformat() if win.first_day else None,
                "last_day": win.last_day.isoformat() if win.last_day else None,
                "counting_days": win.counting_days, "elapsed_days": win.elapsed_days,
                "share_due": round(win.share, 6), "timezone": state.definition.timezone,
            },
            "ahead": sum(1 for r in rows if r.status == "ahead"),
            "behind": sum(1 for r in rows if r.status == "behind"),
            "rows": [r.__dict__ for r in selected],
        }

    return router
