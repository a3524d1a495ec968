"""Admin endpoints of access itself: issuing, listing and revoking tokens, and the audit trail of
every admin write. Tokens and audit records are events on the registry log, so every API
instance (and both runtimes) agrees on them."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.deps import Access, TokenIdPath, admin_only
from api.services import Services
from core.access import ENV_ADMIN_ID, new_token, new_token_id, token_sha256
from core.registry import AuditEntry, TokenRecord
from schemas.access import ALL_CAMPAIGNS, GLOBAL_ROLES, Role
from schemas.events import Actor, AdminAudited, TokenIssued, TokenRevoked

_ID = r"^[A-Za-z0-9_.:*-]+$"


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
    campaign: str = Field(min_length=1, max_length=64, pattern=_ID)  # "*": all (admin, monitor)
    unit: str | None = Field(default=None, min_length=1, max_length=64)
    work_region: str | None = Field(default=None, min_length=1, max_length=64)
    label: str = Field(min_length=1, max_length=200, description="whom it was given to")
    expires_at: AwareDatetime | None = None


def actor(access: Access) -> Actor:
    caller = access.caller
    if caller is None:  # admin routes always have a caller; kept total for the type checker
        return Actor(token_id="", label="")
    return Actor(token_id=caller.token_id, label=caller.label)


async def record_audit(
    services: Services, access: Access, action: str, campaign: str, detail: dict[str, str]
) -> None:
    """Put an admin write on the audit trail (a registry event: every instance sees it)."""
    await services.publish_registry(AdminAudited(
        audit_id=secrets.token_hex(12), action=action, campaign=campaign,
        at=dt.datetime.now(dt.UTC), by=actor(access), detail=detail,
    ))


def scope_of(record: TokenRecord) -> dict[str, str]:
    if record.unit:
        return {"unit": record.unit}
    if record.work_region:
        return {"work_region": record.work_region}
    return {}


def token_json(record: TokenRecord, now: dt.datetime) -> dict[str, Any]:
    if record.revoked_at is not None:
        status = "revoked"
    elif record.expires_at is not None and record.expires_at <= now:
        status = "expired"
    else:
        status = "active"
    return {
        "token_id": record.token_id, "role": record.role.value, "campaign": record.campaign,
        "scope": scope_of(record), "label": record.label, "status": status,
        "issued_at": record.issued_at.isoformat(),
        "expires_at": record.expires_at.isoformat() if record.expires_at else None,
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
        "issued_by": record.issued_by.model_dump(),
    }


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    return {"at": entry.at.isoformat(), "action": entry.action, "campaign": entry.campaign or None,
            "by": entry.by.model_dump(), "detail": entry.detail}


def _check_request(services: Services, access: Access, body: TokenRequest) -> None:
    """422 for a token that could not work; 403 for one outside the issuer's own campaign."""
    caller = access.caller
    if body.campaign == ALL_CAMPAIGNS:
        if body.role not in GLOBAL_ROLES:
            raise HTTPException(422, f"a {body.role.value} token is bound to one campaign")
    elif services.registry.get(body.campaign) is None:
        raise HTTPException(422, f"unknown campaign {body.campaign!r}")
    if caller is not None and not caller.bound_to(body.campaign):
        raise HTTPException(403, f"this token may issue tokens for {caller.campaign!r} only")
    state = services.registry.get(body.campaign)
    if body.role is Role.unit:
        if not body.unit or body.work_region:
            raise HTTPException(422, "a unit token names its unit (and no work_region)")
        if state is None or body.unit not in state.units:
            raise HTTPException(422, f"unknown unit {body.unit!r} in campaign {body.campaign!r}")
    elif body.role is Role.coordinator:
        if not body.work_region or body.unit:
            raise HTTPException(422, "a coordinator token names its work_region (and no unit)")
        if state is None or body.work_region not in state.work_regions:
            raise HTTPException(
                422, f"unknown work region {body.work_region!r} in campaign {body.campaign!r}")
    elif body.unit or body.work_region:
        raise HTTPException(422, f"a {body.role.value} token has no unit or work_region")
    if body.expires_at is not None and body.expires_at <= dt.datetime.now(dt.UTC):
        raise HTTPException(422, "expires_at is in the past")


def build_access_router(services: Services) -> APIRouter:
    router = APIRouter(tags=["access"])

    @router.post("/v1/admin/tokens", status_code=201)
    async def issue_token(
        body: TokenRequest, access: Annotated[Access, admin_only()]
    ) -> dict[str, Any]:
        """Issue a token (shown once, in this answer; only its hash is kept)."""
        _check_request(services, access, body)
        token = new_token()
        event = TokenIssued(
            token_id=new_token_id(), token_sha256=token_sha256(token), role=body.role,
            campaign=body.campaign, unit=body.unit or "", work_region=body.work_region or "",
            label=body.label, issued_at=dt.datetime.now(dt.UTC), expires_at=body.expires_at,
            by=actor(access),
        )
        await services.publish_registry(event)
        record = services.registry.tokens[event.token_id]
        return {**token_json(record, dt.datetime.now(dt.UTC)), "token": token}

    @router.get("/v1/admin/tokens")
    async def list_tokens(
        access: Annotated[Access, admin_only()],
        campaign: Annotated[str | None, Query(min_length=1, max_length=64, pattern=_ID)] = None,
    ) -> dict[str, Any]:
        """Every token (never a secret or its hash), oldest first; `campaign` narrows."""
        caller = access.caller
        now = dt.datetime.now(dt.UTC)
        rows = [
            token_json(r, now) for r in services.registry.tokens.values()
            if (campaign is None or r.campaign == campaign)
            and (caller is None or caller.bound_to(r.campaign))
        ]
        return {"tokens": rows}

    @router.delete("/v1/admin/tokens/{token_id}")
    async def revoke_token(
        token_id: TokenIdPath, access: Annotated[Access, admin_only()]
    ) -> dict[str, Any]:
        """Revoke a token: refused on every instance within seconds. Revoking again is a no-op."""
        record = services.registry.tokens.get(token_id)
        caller = access.caller
        if record is None or token_id == ENV_ADMIN_ID or (
                caller is not None and not caller.bound_to(record.campaign)):
            raise HTTPException(404, f"no token {token_id!r}")
        if record.revoked_at is None:
            await services.publish_registry(TokenRevoked(
                token_id=token_id, revoked_at=dt.datetime.now(dt.UTC), by=actor(access)))
        return token_json(services.registry.tokens[token_id], dt.datetime.now(dt.UTC))

    @router.get("/v1/admin/audit")
    async def audit(
        access: Annotated[Access, admin_only()],
        campaign: Annotated[str | None, Query(min_length=1, max_length=64, pattern=_ID)] = None,
        limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    ) -> dict[str, Any]:
        """Every admin write (token issued or revoked, campaign defined, review, median,
        freeze, export, links issued or revoked): who (token id and label), what, when; newest
        first."""
        caller = access.caller
        rows = [
            e for e in reversed(services.registry.audit)
            if (campaign is None or e.campaign == campaign)
            and (caller is None or caller.campaign == ALL_CAMPAIGNS
                 or (bool(e.campaign) and caller.bound_to(e.campaign)))
        ]
        return {"audit": [audit_json(e) for e in rows[:limit]]}

    return router
