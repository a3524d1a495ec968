"""Regional queries over HTTP: counts grouped by region, link, channel and time, and how a
region answered one question."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from prometheus_client import Histogram

from api.deps import ANALYSIS, COUNTS, Access, CampaignId, scoped_read
from api.opens import with_opens
from api.services import Services
from core.ports import BREAKDOWN_DIMENSIONS, BreakdownRow, RegionFilter
from core.registry import CampaignState
from schemas.campaign import MultiQuestion, Question, ScaleQuestion, SingleQuestion

# Filters that name registry objects take the registry's id syntax (anything else is a 422);
# free text the respondent or organiser wrote (channel, respondent province and city) is only
# bounded in length, and a value nobody has simply matches nothing.
_ID = r"^[A-Za-z0-9_.:-]+$"
RegistryId = Annotated[str | None, Query(min_length=1, max_length=64, pattern=_ID)]
LinkCode = Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
FreeText = Annotated[str | None, Query(min_length=1, max_length=64)]
Day = Annotated[dt.date | None, Query(description="receive date in Asia/Shanghai, inclusive")]


def region_filter(
    province: RegistryId = None,
    work_region: RegistryId = None,
    unit: RegistryId = None,
    link: LinkCode = None,
    channel: FreeText = None,
    respondent_province: FreeText = None,
    city: FreeText = None,
    date_from: Day = None,
    date_to: Day = None,
    phase: RegistryId = None,
) -> RegionFilter:
    if date_from is not None and date_to is not None and date_from > date_to:
        raise HTTPException(422, f"date_from ({date_from}) is after date_to ({date_to})")
    return RegionFilter(
        province=province, work_region=work_region, unit=unit, link=link, channel=channel,
        respondent_province=respondent_province, city=city, date_from=date_from,
        date_to=date_to, phase=phase,
    )


Filters = Annotated[RegionFilter, Depends(region_filter)]
_BY_HELP = "comma-separated, from: " + ", ".join(BREAKDOWN_DIMENSIONS)


def parse_by(by: str) -> list[str]:
    """`province,day` -> ["province", "day"]; 422 for a name not in the list or one repeated."""
    names = [name.strip() for name in by.split(",")] if by.strip() else []
    unknown = [name for name in names if name not in BREAKDOWN_DIMENSIONS]
    if unknown:
        raise HTTPException(
            422, f"cannot group by {unknown[0]!r}: choose from {', '.join(BREAKDOWN_DIMENSIONS)}"
        )
    if len(set(names)) != len(names):
        raise HTTPException(422, f"a grouping is repeated in by={by!r}")
    return names


def _row(row: BreakdownRow) -> dict[str, Any]:
    # "" in a group means "none" (no unit for an unknown link, no reason for a valid sheet).
    group = {name: (None if value == "" else value) for name, value in row.group}
    # `conflicts`: resends of an id with other content, listed apart; never in valid/rejected.
    return {**group, "valid": row.valid, "rejected": row.rejected, "test": row.test,
            "conflicts": row.conflicts}


def find_question(state: CampaignState, question_id: str) -> Question | None:
    """The question as the current questionnaire defines it, else as the latest older version
    that had it (its answers are still stored)."""
    current = state.definition.questionnaire
    for questionnaire in [current, *reversed(list(state.questionnaires.values()))]:
        for question in questionnaire.questions:
            if question.id == question_id:
                return question
    return None


def _defined_options(question: Question) -> list[str]:
    if isinstance(question, ScaleQuestion):
        return [str(v) for v in range(question.min, question.max + 1)]
    if isinstance(question, SingleQuestion | MultiQuestion):
        return list(question.options)
    return []


def build_regional_router(services: Services, latency: Histogram) -> APIRouter:
    """`latency` is the read side's query histogram, labelled here by endpoint."""
    router = APIRouter(tags=["regional"])
    counts_latency = latency.labels(endpoint="counts")
    distribution_latency = latency.labels(endpoint="distribution")

    def campaign_state(campaign: str) -> CampaignState:
        state = services.registry.get(campaign)
        if state is None:
            raise HTTPException(404, f"unknown campaign {campaign!r}")
        return state

    @router.get("/v1/campaigns/{campaign}/counts")
    async def counts(
        campaign: CampaignId,
        filters: Filters,
        access: Annotated[Access, scoped_read(COUNTS)],
        by: Annotated[str, Query(max_length=300, description=_BY_HELP)] = "",
    ) -> dict[str, Any]:
        """Valid, rejected and test counts grouped by `by` (none: one row of totals); a
        submission counts under each of its reasons when grouped by `reason`. Grouped by
        unit, link, channel and/or day (or not at all), rows also carry `opens`. A unit or
        coordinator token's counts are of its unit or work region (`scope`)."""
        state = campaign_state(campaign)
        names = parse_by(by)
        narrowed = access.narrow(filters)
        with counts_latency.time():
            rows = await asyncio.to_thread(services.store.breakdown, campaign, names, narrowed)
        out = [_row(r) for r in rows]
        # Answering-page loads (CONTRACT §8) where the grouping and filters fit them.
        opened = await with_opens(services.open_counter, state, names, narrowed, out)
        return {
            "campaign": campaign, "by": names, "filters": filters.given(),
            "scope": access.scope, "rows": out if opened is None else opened,
        }

    @router.get("/v1/campaigns/{campaign}/questions/{question_id}/distribution")
    async def distribution(
        campaign: CampaignId,
        question_id: Annotated[str, Path(min_length=1, max_length=64)],
        filters: Filters,
        access: Annotated[Access, scoped_read(ANALYSIS)],
    ) -> dict[str, Any]:
        """How the accepted submissions in scope answered one question: per option or scale
        point (each chosen option of a multi-choice question counts); for a text question only
        how many answered."""
        state = campaign_state(campaign)
        question = find_question(state, question_id)
        if question is None:
            raise HTTPException(404, f"no question {question_id!r} in campaign {campaign!r}")
        narrowed = access.narrow(filters)
        with distribution_latency.time():
            result = await asyncio.to_thread(
                services.store.answer_distribution, campaign, question, narrowed
            )
        return {
            "campaign": campaign, "question": question.id, "label": question.label,
            "type": question.type, "options": _defined_options(question),
            "filters": filters.given(), "scope": access.scope,
            "accepted": result.accepted, "total": result.total,
            "counts": dict(result.counts),
        }

    return router
