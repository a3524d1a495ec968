"""The read-side HTTP API (CONTRACT §2 public reads, §3 admin), built on FastAPI for its OpenAPI."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, Histogram

from api.access_admin import build_access_router, record_audit
from api.assets import Assets, build_assets_router, default_sources
from api.auth import Gate, PageDenied, deny_undeclared
from api.compression import add_compression
from api.deps import (
    METRICS,
    Access,
    CampaignId,
    SubmissionIdPath,
    admin_only,
    allow,
    crowd,
    public,
)
from api.exports import build_exports_router
from api.findings import build_findings_router
from api.links import build_links_router
from api.live import LiveCounts
from api.live_asgi import LiveShortcut
from api.pacing import build_pacing_router
from api.pages import build_pages_router, denied_page
from api.portal import build_portal_router
from api.read_responses import respond
from api.read_views import campaign_content, full_campaign_content, leaderboard_content
from api.readmodel import ReadModels, audience
from api.regional import build_regional_router
from api.reports import build_reports_router
from api.review import build_review_router
from api.services import Services
from api.signin import build_signin_router
from core.access import Denied, authorize
from schemas.access import Role
from schemas.campaign import CampaignFileError, parse_campaign_text
from schemas.envelope import SubmissionEnvelope
from telemetry import metrics_server

QUERY_LATENCY = Histogram(
    "survey_api_query_duration_seconds", "Read-side query latency", ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
_STATUS_LATENCY = QUERY_LATENCY.labels(endpoint="status")

YAML_TYPES = {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"}


def build_api(services: Services) -> FastAPI:
    """The API app. Its read models (`app.state.reads`) poll the store on a thread of their
    own: call `app.state.reads.close()` before closing the store."""
    app = FastAPI(
        title="survey-ingest",
        version="0.1.0",
        description=(
            "Collects, judges and counts answer sheets of a survey campaign, live. Who may call "
            "each route is in the README's access table; protected routes take "
            "`Authorization: Bearer sik_...`."
        ),
        # /docs is served from this app's own files (api/assets.py), never a CDN.
        docs_url=None, redoc_url=None,
        # Deny by default: a route that declares no rule (api/deps.py) is admin-only.
        dependencies=[Depends(deny_undeclared)],
    )
    app.state.gate = Gate(
        services.registry, services.admin_token, services.session_key,
        failures_per_minute=services.auth_failures_per_minute,
        secure_cookies=services.secure_cookies, admin_label=services.admin_label,
    )
    reads = ReadModels(services.store, services.registry, services.live_interval_s)
    app.state.reads = reads
    services.extra["reads"] = reads
    live = LiveCounts(reads)
    app.state.live = live  # a stopping server ends its streams: `app.state.live.end_all()`
    assets = Assets(default_sources())
    add_compression(app)
    app.add_middleware(LiveShortcut)  # outermost: anonymous screens skip the rest

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": "internal error"}, status_code=500)

    @app.exception_handler(PageDenied)
    async def _page_denied(request: Request, exc: PageDenied) -> Response:
        return denied_page(exc.status_code, request.url.path, exc.headers)

    @app.get("/healthz", tags=["health"], dependencies=[public()])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], dependencies=[public()])
    async def readyz() -> JSONResponse:
        ok = services.ready()
        return JSONResponse(
            {"status": "ready" if ok else "not ready"}, status_code=200 if ok else 503
        )

    @app.get("/metrics", tags=["health"], dependencies=[allow(*METRICS)])
    async def metrics() -> Response:
        body = await asyncio.to_thread(
            metrics_server.exposition, ready=services.ready, campaigns=services
        )
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/v1/submissions",
        status_code=202,
        tags=["collector"],
        dependencies=[public()],
        summary="Submit an answer sheet (served by the collector; documented here)",
        responses={
            400: {"description": "not JSON"}, 413: {"description": "too large"},
            415: {"description": "wrong content type"}, 422: {"description": "envelope invalid"},
            429: {"description": "rate limited"}, 503: {"description": "log unavailable"},
        },
    )
    async def submit(sheet: SubmissionEnvelope) -> dict[str, str]:
        # Reached only on an API process without a collector in front of it.
        raise HTTPException(404, "submissions are taken by the collector, not this process")

    @app.get("/v1/campaigns", tags=["campaigns"], dependencies=[public()])
    async def campaigns() -> dict[str, list[str]]:
        return {"campaigns": sorted(services.registry.campaigns)}

    @app.get("/v1/campaigns/{campaign}", tags=["campaigns"])
    async def campaign_definition(
        campaign: CampaignId, request: Request, access: Annotated[Access, public()]
    ) -> Response:
        """The whole definition for an `admin` or `analyst` token of the campaign; for anyone
        else the public view: ids, names, work regions, provinces, units and targets (no link
        codes, no plans beyond targets, no rules). Both with `totals` (valid, rejected, test)
        and their `as_of`, from this tick's snapshot."""
        snap = await reads.snapshot(campaign)
        if snap is None:
            raise HTTPException(404, f"unknown campaign {campaign!r}")
        caller = access.caller
        if caller is not None and caller.role in (Role.admin, Role.analyst) \
                and caller.bound_to(campaign):
            return respond(request, snap.view(("campaign", "full"), full_campaign_content,
                                              scope="full"))
        return respond(request, snap.view(("campaign",), campaign_content))

    @app.get("/v1/campaigns/{campaign}/submissions/{submission_id}", tags=["reads"],
             dependencies=[public()])
    async def submission_status(
        campaign: CampaignId, submission_id: SubmissionIdPath
    ) -> dict[str, Any]:
        with _STATUS_LATENCY.time():
            found = await asyncio.to_thread(
                services.store.submission_status, campaign, submission_id
            )
        if found is not None:
            out: dict[str, Any] = {
                "submission_id": found.submission_id, "status": found.status,
                "reasons": list(found.reasons), "unit": found.unit or None,
                "province": found.province or None,
                # Resends of this id with other content: kept, never a sheet (CONTRACT §6).
                "conflicts": found.conflicts,
            }
            if found.status in ("accepted", "rejected"):
                # An organiser's review decision (api/review.py) stands over the verdict.
                review = await asyncio.to_thread(
                    services.store.submission_review, campaign, submission_id
                )
                if review is not None:
                    out["status"] = review[0]
                    out["review"] = {"decision_id": review[1], "judged_status": found.status}
            return out
        if services.is_pending(campaign, submission_id):
            return {"submission_id": submission_id, "status": "received", "reasons": [],
                    "unit": None, "province": None, "conflicts": 0}
        raise HTTPException(404, f"no submission {submission_id!r} in campaign {campaign!r}")

    @app.get("/v1/campaigns/{campaign}/leaderboard", tags=["reads"], dependencies=[crowd()])
    async def get_leaderboard(
        campaign: CampaignId,
        request: Request,
        level: Literal["unit", "province", "work_region"] = "unit",
        limit: Annotated[int | None, Query(ge=1, le=10000)] = None,
    ) -> Response:
        """Ranked rows `{"rank", "id", "name", "valid", "rejected", "target", "progress"}` from
        this tick's snapshot (`as_of`); `ETag`, `304` on If-None-Match."""
        snap = await reads.snapshot(campaign)
        if snap is None:
            raise HTTPException(404, f"unknown campaign {campaign!r}")
        view = snap.view(("leaderboard", level, limit), leaderboard_content(level, limit),
                         scope=audience(services.registry, campaign))
        return respond(request, view)

    @app.get("/v1/campaigns/{campaign}/live", tags=["reads"],
             response_class=StreamingResponse)
    async def live_stream(
        campaign: CampaignId, access: Annotated[Access, crowd()]
    ) -> StreamingResponse:
        snap = await reads.snapshot(campaign)
        if snap is None:
            raise HTTPException(404, f"unknown campaign {campaign!r}")
        # An open stream outlives its check: every stream is checked again at each event (or
        # keep-alive, 15 s at most) and ends once its caller is refused.
        stream = _while_allowed(live.stream(campaign, snap), app.state.gate, access, campaign)
        return StreamingResponse(
            stream, media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    @app.put("/v1/admin/campaigns/{campaign}", tags=["admin"])
    async def put_campaign(
        campaign: CampaignId,
        request: Request,
        access: Annotated[Access, admin_only()],
        content_type: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        media = (content_type or "application/json").split(";", 1)[0].strip().lower()
        if media != "application/json" and media not in YAML_TYPES:
            raise HTTPException(415, "send the definition as application/json or application/yaml")
        raw = await request.body()
        if len(raw) > 8 * 1024 * 1024:
            raise HTTPException(413, "definition larger than 8 MiB")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise HTTPException(400, "definition is not UTF-8") from exc
        try:
            definition = parse_campaign_text(text, "request body")
        except CampaignFileError as exc:
            raise HTTPException(422, str(exc)) from exc
        if definition.campaign != campaign:
            raise HTTPException(
                422, f"definition is for campaign {definition.campaign!r}, not {campaign!r}"
            )
        await services.define_campaign(definition)
        await record_audit(services, access, "campaign.defined", campaign, {
            "units": str(len(definition.units)), "links": str(len(definition.links)),
            "questionnaire_version": definition.questionnaire.version,
        })
        return {
            "campaign": campaign, "status": "in force",
            "units": len(definition.units), "links": len(definition.links),
            "questionnaire_version": definition.questionnaire.version,
        }

    # The crowd's routes first: FastAPI tries routes in order, and every one passed costs a match.
    app.include_router(build_pacing_router(services, reads))
    app.include_router(build_pages_router(services, assets))
    app.include_router(build_assets_router(assets, app.openapi_url or "/openapi.json", app.title))
    app.include_router(build_regional_router(services, QUERY_LATENCY))
    app.include_router(build_signin_router(services))
    app.include_router(build_reports_router(services))
    app.include_router(build_findings_router(services))
    app.include_router(build_review_router(services))
    app.include_router(build_links_router(services))
    app.include_router(build_portal_router(services))
    app.include_router(build_exports_router(services))
    app.include_router(build_access_router(services))
    return app


async def _while_allowed(
    stream: AsyncIterator[str], gate: Gate, access: Access, campaign: str
) -> AsyncIterator[str]:
    """`stream` for as long as its caller may still open it: the route's own rule (CROWD)
    against the campaign as the registry holds it now (an anonymous screen's stream ends when
    the campaign turns private), and a stream opened with a token ends once that token is
    revoked or expired."""
    try:
        async for chunk in stream:
            if not _still_allowed(gate, access, campaign):
                return
            yield chunk
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


def _still_allowed(gate: Gate, access: Access, campaign: str) -> bool:
    caller = access.caller
    try:
        if caller is not None:
            caller = gate.authenticator.caller_by_id(caller.token_id, dt.datetime.now(dt.UTC))
        authorize(access.rule, caller, campaign, gate.registry.get(campaign))
    except Denied:
        return False
    return True
