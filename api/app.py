"""The read-side HTTP API (CONTRACT §2 public reads, §3 admin), built on FastAPI for its OpenAPI."""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, Histogram

from api.findings import build_findings_router
from api.live import LiveCounts
from api.pacing import build_pacing_router
from api.pages import build_pages_router
from api.regional import build_regional_router
from api.reports import build_reports_router
from api.review import build_review_router
from api.services import Services
from core.counting import leaderboard
from schemas.campaign import CampaignFileError, parse_campaign_text
from schemas.envelope import SubmissionEnvelope
from telemetry import metrics_server

QUERY_LATENCY = Histogram(
    "survey_api_query_duration_seconds", "Read-side query latency", ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
_STATUS_LATENCY = QUERY_LATENCY.labels(endpoint="status")
_LEADERBOARD_LATENCY = QUERY_LATENCY.labels(endpoint="leaderboard")

CampaignId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
YAML_TYPES = {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"}


def build_api(services: Services) -> FastAPI:
    app = FastAPI(
        title="survey-ingest",
        version="0.1.0",
        description="Collects, judges and counts answer sheets of a survey campaign, live.",
    )
    live = LiveCounts(services.store, services.registry, services.live_interval_s)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": "internal error"}, status_code=500)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        ok = services.ready()
        return JSONResponse(
            {"status": "ready" if ok else "not ready"}, status_code=200 if ok else 503
        )

    @app.get("/metrics", tags=["health"])
    async def metrics() -> Response:
        body = await asyncio.to_thread(
            metrics_server.exposition, ready=services.ready, campaigns=services
        )
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/v1/submissions",
        status_code=202,
        tags=["collector"],
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

    @app.get("/v1/campaigns", tags=["campaigns"])
    async def campaigns() -> dict[str, list[str]]:
        return {"campaigns": sorted(services.registry.campaigns)}

    @app.get("/v1/campaigns/{campaign}", tags=["campaigns"])
    async def campaign_definition(campaign: CampaignId) -> dict[str, Any]:
        state = services.registry.get(campaign)
        if state is None:
            raise HTTPException(404, f"unknown campaign {campaign!r}")
        return state.definition.model_dump(mode="json")

    @app.get("/v1/campaigns/{campaign}/submissions/{submission_id}", tags=["reads"])
    async def submission_status(
        campaign: CampaignId,
        submission_id: Annotated[
            str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
        ],
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

    @app.get("/v1/campaigns/{campaign}/leaderboard", tags=["reads"])
    async def get_leaderboard(
        campaign: CampaignId,
        level: Literal["unit", "province", "work_region"] = "unit",
        limit: Annotated[int | None, Query(ge=1, le=10000)] = None,
    ) -> dict[str, Any]:
        state = services.registry.get(campaign)
        if state is None:
            raise HTTPException(404, f"unknown campaign {campaign!r}")
        with _LEADERBOARD_LATENCY.time():
            counts = await asyncio.to_thread(services.store.unit_counts, campaign)
        rows = leaderboard(state, counts, level, limit)
        return {
            "campaign": campaign, "level": level,
            "as_of": dt.datetime.now(dt.UTC).isoformat(),
            # Live figures may still move (review decisions); `campaign freeze` makes the final.
            "provisional": True,
            "rows": [r.__dict__ for r in rows],
        }

    @app.get("/v1/campaigns/{campaign}/live", tags=["reads"],
             response_class=StreamingResponse)
    async def live_stream(campaign: CampaignId) -> StreamingResponse:
        if services.registry.get(campaign) is None:
            raise HTTPException(404, f"unknown campaign {campaign!r}")
        return StreamingResponse(
            live.stream(campaign), media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    @app.put("/v1/admin/campaigns/{campaign}", tags=["admin"])
    async def put_campaign(
        campaign: CampaignId,
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
        content_type: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        _check_token(services.admin_token, authorization)
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
        return {
            "campaign": campaign, "status": "in force",
            "units": len(definition.units), "links": len(definition.links),
            "questionnaire_version": definition.questionnaire.version,
        }

    app.include_router(build_regional_router(services, QUERY_LATENCY))
    app.include_router(build_pages_router(services))
    app.include_router(build_reports_router(services))
    app.include_router(build_findings_router(services))
    app.include_router(build_review_router(services))
    app.include_router(build_pacing_router(services))
    return app


def _check_token(expected: str, authorization: str | None) -> None:
    given = ""
    if authorization and authorization[:7].lower() == "bearer ":
        given = authorization[7:].strip()
    # Constant-time comparison; an unset token never matches, so admin stays closed by default.
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            401, "missing or wrong admin token", headers={"WWW-Authenticate": "Bearer"}
        )
