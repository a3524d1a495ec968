"""Anomaly findings over HTTP: what the detectors found on a campaign's links, with evidence."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from api.deps import FINDINGS, Access, CampaignId, scoped_read
from api.services import Services
from core.anomaly.ports import FindingStore
from schemas.events import AnomalyKind, FindingRaised


def finding_json(f: FindingRaised) -> dict[str, Any]:
    return {
        "finding_id": f.finding_id, "revision": f.revision, "kind": f.anomaly,
        "detector_version": f.detector_version, "link": f.link_code or None,
        "unit": f.unit or None, "window_start": f.window_start.isoformat(),
        "window_end": f.window_end.isoformat(), "raised_at": f.raised_at.isoformat(),
        "score": f.score, "evidence": f.evidence.model_dump(mode="json"),
    }


def build_findings_router(services: Services) -> APIRouter:
    router = APIRouter(tags=["findings"])

    @router.get("/v1/campaigns/{campaign}/findings")
    async def findings(
        campaign: CampaignId,
        access: Annotated[Access, scoped_read(FINDINGS)],
        kind: AnomalyKind | None = None,
        unit: Annotated[str | None, Query(min_length=1, max_length=64,
                                          pattern=r"^[A-Za-z0-9_.:-]+$")] = None,
        link: Annotated[str | None, Query(min_length=1, max_length=64,
                                          pattern=r"^[A-Za-z0-9_-]+$")] = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    ) -> dict[str, Any]:
        """Anomaly findings (latest revision each, newest first): evidence for organisers to
        review. They never change a verdict or a count. A coordinator sees the findings whose
        units all lie in its work region."""
        if services.registry.get(campaign) is None:
            raise HTTPException(404, f"unknown campaign {campaign!r}")
        units = access.units_in_scope()
        if units is not None:
            if unit is not None and unit not in units:
                raise HTTPException(403, f"outside this token's scope {access.scope}")
            if link is not None and (access.state is None or link not in access.state.links
                                     or access.state.links[link].unit not in units):
                raise HTTPException(403, f"outside this token's scope {access.scope}")
        store = services.extra.get("findings")
        if not isinstance(store, FindingStore):
            raise HTTPException(503, "findings are not available on this process")
        # The scope is a filter of the query itself, before its limit: a region's findings
        # are never crowded out by other regions'.
        rows = await asyncio.to_thread(
            store.findings, campaign, anomaly=kind, unit=unit, link=link, limit=limit,
            within_units=units,
        )
        given = {k: v for k, v in (("kind", kind), ("unit", unit), ("link", link)) if v}
        return {"campaign": campaign, "filters": given, "scope": access.scope,
                "findings": [finding_json(f) for f in rows]}

    return router

