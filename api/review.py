"""Admin endpoints for the integrity of the ranking: review decisions and their audit trail, the
published median behind the relative speed floor, and the final (frozen) ranking."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from api.access_admin import record_audit
from api.deps import REVIEW_READ, Access, CampaignId, admin_only, allow
from api.readmodel import ReadModels
from api.services import Services
from core import freeze
from core.ports import Store
from core.registry import Registry, RegistryEvent
from core.review import decision_summary, decisions_for, order_key
from schemas.events import DurationMedianSet, ReviewDecided

log = logging.getLogger(__name__)
SubmissionId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
MAX_IDS = 10_000
# A published median takes effect this long after it is computed, so it is on the registry log
# before any sheet received at or after its effective time is judged (in either runtime).
MEDIAN_DELAY = dt.timedelta(seconds=10)


class ReviewRequest(BaseModel):
    """A decision as an organiser sends it: either submission_ids, or link_code with a window
    of receive times [window_start, window_end)."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["invalid", "valid"]
    reason: str = Field(min_length=1, max_length=2000)
    reviewer: str = Field(min_length=1, max_length=200)
    # Optional idempotency key: sending the same decision again with it changes nothing.
    decision_id: Annotated[
        str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    ] | None = None
    submission_ids: list[SubmissionId] = Field(default_factory=list, max_length=MAX_IDS)
    link_code: str = Field(default="", max_length=64)
    window_start: AwareDatetime | None = None
    window_end: AwareDatetime | None = None


def decision_from(
    campaign: str, request: ReviewRequest, registry: Registry, now: dt.datetime
) -> ReviewDecided:
    """The event for a request, or HTTPException 404/422 naming what is wrong."""
    state = registry.get(campaign)
    if state is None:
        raise HTTPException(404, f"unknown campaign {campaign!r}")
    if request.link_code and request.link_code not in state.links:
        raise HTTPException(422, f"unknown link {request.link_code!r} in campaign {campaign!r}")
    try:
        return ReviewDecided(
            decision_id=request.decision_id or uuid.uuid4().hex,
            campaign=campaign, action=request.action, reason=request.reason,
            reviewer=request.reviewer, decided_at=now,
            submission_ids=tuple(dict.fromkeys(request.submission_ids)),
            link_code=request.link_code, window_start=request.window_start,
            window_end=request.window_end,
        )
    except ValidationError as exc:
        message = "; ".join(str(e["msg"]) for e in exc.errors())
        raise HTTPException(422, message) from exc


def _same_decision(a: ReviewDecided, b: ReviewDecided) -> bool:
    ignore = {"decided_at"}
    return a.model_dump(exclude=ignore) == b.model_dump(exclude=ignore)


async def record_decision(
    services: Services, campaign: str, request: ReviewRequest
) -> tuple[ReviewDecided, bool, int]:
    """Log a decision (once per decision_id) and apply it: (decision, new, sheets covered)."""
    state = services.registry.get(campaign)
    decision = decision_from(campaign, request, services.registry, dt.datetime.now(dt.UTC))
    existing = next(
        (r for r in (state.reviews if state else ()) if r.decision_id == decision.decision_id),
        None,
    )
    if existing is not None:
        if not _same_decision(existing, decision):
            raise HTTPException(
                409, f"decision {decision.decision_id!r} exists with different content"
            )
        decision, new = existing, False
    else:
        await services.publish_registry(decision)
        new = True
        # The registry keeps the first event of a decision_id (a retry through another API
        # process may have published one too): apply the one in force, as a replay will.
        state = services.registry.get(campaign)
        decision = next(
            (r for r in (state.reviews if state else ()) if r.decision_id == decision.decision_id),
            decision,
        )
    # Applied even when it already was: harmless, and it completes one cut short by a crash.
    covered = await asyncio.to_thread(services.store.apply_review, decision)
    reads = services.extra.get("reads")
    if isinstance(reads, ReadModels):
        await reads.refresh_now(campaign)  # the reviewer sees the counts move at once
    return decision, new, covered


async def publish_median(
    store: Store,
    registry: Registry,
    campaign: str,
    publish: Callable[[RegistryEvent], Awaitable[None]],
) -> DurationMedianSet | None:
    """Compute the median completion time of the campaign's current questionnaire version
    from the stored accepted sheets and publish it; None when there is no accepted sheet."""
    state = registry.get(campaign)
    if state is None:
        return None
    version = state.definition.questionnaire.version
    median, samples = await asyncio.to_thread(store.duration_median, campaign, version)
    if samples == 0:
        return None
    now = dt.datetime.now(dt.UTC)
    event = DurationMedianSet(
        campaign=campaign, questionnaire_version=version, median_seconds=round(median, 3),
        samples=samples, computed_at=now, effective_at=now + MEDIAN_DELAY,
    )
    await publish(event)
    return event


async def refresh_medians(
    store: Store,
    registry: Registry,
    publish: Callable[[RegistryEvent], Awaitable[None]],
    stop: asyncio.Event,
    tick_s: float = 30.0,
) -> None:
    """Until `stop`: publish the median of every campaign with a relative speed floor, every
    relative_refresh_minutes (the first at once). Run by a serving process of either runtime;
    several of them publishing is harmless (each median is an event, the latest in force
    stands)."""
    last: dict[str, float] = {}
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        for campaign, state in list(registry.campaigns.items()):
            q = state.definition.questionnaire
            now = loop.time()
            if q.relative_min_fraction <= 0 or (
                campaign in last and now - last[campaign] < q.relative_refresh_minutes * 60
            ):
                continue
            last[campaign] = now
            try:
                await publish_median(store, registry, campaign, publish)
            except Exception:
                log.exception("median of campaign %s not published; trying again later", campaign)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=tick_s)


async def final_snapshot(services: Services, campaign: str) -> dict[str, Any]:
    state = services.registry.get(campaign)
    if state is None:
        raise HTTPException(404, f"unknown campaign {campaign!r}")
    counts = await asyncio.to_thread(services.store.unit_counts, campaign)
    versions = await asyncio.to_thread(services.store.rules_versions, campaign)
    content = freeze.final_content(state, counts, versions)
    return freeze.snapshot(content, dt.datetime.now(dt.UTC))


def build_review_router(services: Services) -> APIRouter:
    router = APIRouter(tags=["admin"])

    @router.post("/v1/admin/campaigns/{campaign}/reviews")
    async def post_review(
        campaign: CampaignId,
        body: ReviewRequest,
        access: Annotated[Access, admin_only()],
    ) -> dict[str, Any]:
        """Mark sheets invalid, or valid again, with a reason; counts and rankings follow.
        Sending the same decision_id again changes nothing."""
        decision, new, covered = await record_decision(services, campaign, body)
        if new:
            await record_audit(services, access, "review.decided", campaign, {
                "decision_id": decision.decision_id, "action": decision.action,
                "reviewer": decision.reviewer, "covered": str(covered),
            })
        return {"decision": decision_summary(decision), "new": new, "covered": covered}

    @router.get("/v1/admin/campaigns/{campaign}/reviews", dependencies=[allow(*REVIEW_READ)])
    async def list_reviews(
        campaign: CampaignId,
        submission_id: Annotated[
            str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
        ] = None,
    ) -> dict[str, Any]:
        """The audit trail: every decision (who, what, when, why), oldest first, with how many
        sheets it covers and for how many it is the latest word; or one sheet's decisions."""
        state = services.registry.get(campaign)
        if state is None:
            raise HTTPException(404, f"unknown campaign {campaign!r}")
        decisions = sorted(state.reviews, key=order_key)
        out: dict[str, Any] = {"campaign": campaign}
        if submission_id is not None:
            target = await asyncio.to_thread(
                services.store.review_target, campaign, submission_id
            )
            if target is None:
                raise HTTPException(
                    404, f"no submission {submission_id!r} in campaign {campaign!r}"
                )
            decisions = decisions_for(decisions, target)
            out.update(submission_id=submission_id, judged_status=target.status,
                       status=target.status)
            if decisions:
                out["status"] = "rejected" if decisions[-1].action == "invalid" else "accepted"
        standing = await asyncio.to_thread(services.store.review_standing, campaign)
        out["decisions"] = [
            {**decision_summary(d), "covered": standing.get(d.decision_id, (0, 0))[0],
             "standing": standing.get(d.decision_id, (0, 0))[1]}
            for d in decisions
        ]
        return out

    @router.post("/v1/admin/campaigns/{campaign}/median")
    async def post_median(
        campaign: CampaignId, access: Annotated[Access, admin_only()]
    ) -> dict[str, Any]:
        """Publish the median completion time the relative speed floor compares against (a
        running instance also does this every relative_refresh_minutes)."""
        state = services.registry.get(campaign)
        if state is None:
            raise HTTPException(404, f"unknown campaign {campaign!r}")
        event = await publish_median(
            services.store, services.registry, campaign, services.publish_registry
        )
        if event is None:
            raise HTTPException(409, "no accepted sheet of the current version yet")
        await record_audit(services, access, "median.published", campaign, {
            "median_seconds": str(event.median_seconds), "samples": str(event.samples)})
        q = state.definition.questionnaire
        return {
            **event.model_dump(mode="json", exclude={"v", "kind"}),
            "in_force": event.samples >= q.relative_min_samples,
            "floor_seconds": round(q.relative_min_fraction * event.median_seconds, 3),
        }

    @router.post("/v1/admin/campaigns/{campaign}/freeze")
    async def post_freeze(
        campaign: CampaignId, access: Annotated[Access, admin_only()]
    ) -> dict[str, Any]:
        """The final ranking: every leaderboard after review decisions, the rules versions
        used, and a sha256 over its canonical JSON (reproduced by a replay of the log)."""
        snapshot = await final_snapshot(services, campaign)
        await record_audit(services, access, "campaign.frozen", campaign,
                           {"sha256": str(snapshot.get("sha256", ""))})
        return snapshot

    return router
