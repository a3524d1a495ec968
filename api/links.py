"""Links that units issue themselves (CONTRACT §8): list with opens and counts, issue within
the unit's planned_links, revoke; each link's QR code (PNG, SVG) and the unit's printable
A4 sheet (PDF). Issuing and revoking are registry events (link.issued, link.revoked), so both
runtimes and a replay agree on which links exist and since when they are dead; each is on the
audit trail (`GET /v1/admin/audit`) with who asked, as every admin write is.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import string
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from api.access_admin import actor, record_audit
from api.deps import (
    LINKS_LIST,
    LINKS_WRITE,
    Access,
    CampaignId,
    LinkCodePath,
    UnitId,
    scoped_read,
)
from api.services import Services
from core.ports import RegionFilter
from core.registry import CampaignState, Registry
from links.sheet import SheetCard, qr_png, qr_svg, sheet_pdf
from schemas.events import LinkIssued, LinkRevoked

LinkAction = Literal["list", "issue", "revoke"]

# 12 characters from 62: ~71 random bits. Short enough to type from a poster, far too many to
# guess (with 100,000 live links, one hit takes ~10^16 tries on average).
CODE_ALPHABET = string.ascii_letters + string.digits
CODE_LENGTH = 12
MAX_ISSUE = 100  # links per request


class IssueRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = Field(default=1, ge=1, le=MAX_ISSUE)
    channel: str = Field(default="", max_length=64)


def new_code(registry: Registry) -> str:
    """A random code no campaign has (codes are unique across campaigns: /s/{code} names one)."""
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if not any(code in s.links for s in list(registry.campaigns.values())):
            return code


def link_url(base_url: str, code: str) -> str:
    return f"{base_url.rstrip('/')}/s/{code}"


def _state(services: Services, campaign: str) -> CampaignState:
    state = services.registry.get(campaign)
    if state is None:
        raise HTTPException(404, f"unknown campaign {campaign!r}")
    return state


def _unit_state(services: Services, campaign: str, unit: str) -> CampaignState:
    state = _state(services, campaign)
    if unit not in state.units:
        raise HTTPException(404, f"campaign {campaign!r} has no unit {unit!r}")
    return state


def _base_url(services: Services, request: Request) -> str:
    return services.public_base_url or str(request.base_url)


def _too_many(state: CampaignState, unit: str, asked: int) -> HTTPException:
    planned = state.units[unit].planned_links
    live = len(state.live_links(unit))
    left = max(0, planned - live)
    return HTTPException(409, (
        f"unit {unit!r} may hold {planned} live links (planned_links) and holds {live}: "
        f"{left} more can be issued, not {asked}; revoke one or raise planned_links"
    ))


def issuer(access: Access) -> str:
    """Who asked, as a link.issued event names them: the token's label and id."""
    by = actor(access)
    return f"{by.label[:130]} [{by.token_id}]"


async def issue_links(
    services: Services, access: Access, campaign: str, unit: str, count: int, channel: str
) -> list[str]:
    """Publish `count` new links for the unit; the codes, once all are in force. 409 when the
    plan leaves fewer, or when another process took the room first (the fold decides). Those
    in force are on the audit trail, the 409 case too."""
    state = _unit_state(services, campaign, unit)
    if count > state.links_left(unit):
        raise _too_many(state, unit, count)
    codes: list[str] = []
    for _ in range(count):
        code = new_code(services.registry)
        await services.publish_registry(LinkIssued(
            campaign=campaign, link_code=code, unit=unit, channel=channel,
            issued_at=dt.datetime.now(dt.UTC), issued_by=issuer(access)))
        codes.append(code)
    state = _state(services, campaign)
    kept = [c for c in codes if c in state.links and state.links[c].unit == unit]
    if kept:
        await record_audit(services, access, "link.issued", campaign, {
            "unit": unit, "channel": channel, "count": str(len(kept)), "codes": ",".join(kept)})
    if len(kept) < len(codes):
        raise HTTPException(409, (
            f"only {len(kept)} of {count} links were issued ({', '.join(kept) or 'none'}): "
            "the unit reached planned_links meanwhile"))
    return codes


async def revoke_link(
    services: Services, access: Access, campaign: str, code: str
) -> dt.datetime:
    """Revoke a link, on the audit trail; revoking again changes nothing (and is not audited)."""
    state = _state(services, campaign)
    link = state.links.get(code)
    if link is None:
        raise HTTPException(404, f"no link {code!r} in campaign {campaign!r}")
    if link.revoked_at is not None:
        return link.revoked_at
    await services.publish_registry(
        LinkRevoked(campaign=campaign, link_code=code, revoked_at=dt.datetime.now(dt.UTC)))
    revoked = _state(services, campaign).links[code].revoked_at
    assert revoked is not None
    await record_audit(services, access, "link.revoked", campaign, {
        "code": code, "unit": link.unit, "revoked_at": revoked.isoformat()})
    return revoked


async def unit_links(services: Services, campaign: str, unit: str, base_url: str) -> dict[str, Any]:
    state = _unit_state(services, campaign, unit)
    counts = await asyncio.to_thread(
        services.store.breakdown, campaign, ["link"], RegionFilter(unit=unit))
    by_link = {dict(r.group)["link"]: r for r in counts}
    opens = await services.open_counter.per_link(campaign, [unit])
    now = dt.datetime.now(dt.UTC)
    links = []
    for lk in state.links.values():
        if lk.unit != unit:
            continue
        row = by_link.get(lk.code)
        links.append({
            "code": lk.code, "channel": lk.channel, "url": link_url(base_url, lk.code),
            "revoked": state.link_revoked_at(lk.code, now),
            "revoked_at": lk.revoked_at.isoformat() if lk.revoked_at else None,
            "issued_at": lk.issued_at.isoformat() if lk.issued_at else None,
            "opens": opens.get(lk.code, 0),
            "valid": row.valid if row else 0, "rejected": row.rejected if row else 0,
        })
    return {
        "campaign": campaign, "unit": unit, "planned_links": state.units[unit].planned_links,
        "live_links": len(state.live_links(unit)), "left": state.links_left(unit),
        "links": links,
    }


def build_links_router(services: Services) -> APIRouter:
    router = APIRouter(tags=["links"])

    @router.get("/v1/campaigns/{campaign}/units/{unit}/links")
    async def list_links(
        campaign: CampaignId, unit: UnitId, request: Request,
        access: Annotated[Access, scoped_read(LINKS_LIST)],
    ) -> dict[str, Any]:
        """A unit's links with opens, valid and rejected sheets each. Who: unit (own),
        coordinator (its region), analyst, admin."""
        access.require_unit(unit)
        return await unit_links(services, campaign, unit, _base_url(services, request))

    @router.post("/v1/campaigns/{campaign}/units/{unit}/links", status_code=201)
    async def post_links(
        campaign: CampaignId, unit: UnitId, body: IssueRequest, request: Request,
        access: Annotated[Access, scoped_read(LINKS_WRITE)],
    ) -> dict[str, Any]:
        """Issue `count` new links (random codes) on `channel`; 409 past planned_links, with
        how many are left. Who: unit (own), admin."""
        access.require_unit(unit)
        codes = await issue_links(services, access, campaign, unit, body.count, body.channel)
        base = _base_url(services, request)
        return {"links": [
            {"code": c, "channel": body.channel, "url": link_url(base, c)} for c in codes]}

    @router.delete("/v1/campaigns/{campaign}/links/{code}")
    async def delete_link(
        campaign: CampaignId, code: LinkCodePath,
        access: Annotated[Access, scoped_read(LINKS_WRITE)],
    ) -> dict[str, Any]:
        """Revoke a link: its page closes and sheets received from now on are rejected
        (revoked_link). Who: unit (own link), admin."""
        state = _state(services, campaign)
        access.require_link(code)
        link = state.links.get(code)
        revoked_at = await revoke_link(services, access, campaign, code)
        return {"campaign": campaign, "code": code, "unit": link.unit if link else None,
                "revoked": True, "revoked_at": revoked_at.isoformat()}

    @router.get("/v1/campaigns/{campaign}/units/{unit}/links/{code}/qr.{kind}")
    async def link_qr(
        campaign: CampaignId, unit: UnitId, code: LinkCodePath, kind: Literal["png", "svg"],
        request: Request, access: Annotated[Access, scoped_read(LINKS_LIST)],
    ) -> Response:
        """The link's QR code, encoding its answering-page URL. Who: as listing links."""
        access.require_unit(unit)
        state = _unit_state(services, campaign, unit)
        link = state.links.get(code)
        if link is None or link.unit != unit:
            raise HTTPException(404, f"unit {unit!r} has no link {code!r}")
        url = link_url(_base_url(services, request), code)
        render, media = (qr_png, "image/png") if kind == "png" else (qr_svg, "image/svg+xml")
        body = await asyncio.to_thread(render, url)
        return Response(body, media_type=media, headers={
            "content-disposition": f'attachment; filename="{unit}-{code}.{kind}"',
            "cache-control": "private, max-age=3600"})

    @router.get("/v1/campaigns/{campaign}/units/{unit}/sheet.pdf")
    async def unit_sheet(
        campaign: CampaignId, unit: UnitId, request: Request,
        access: Annotated[Access, scoped_read(LINKS_LIST)],
        code: Annotated[list[str] | None, Query(max_length=200)] = None,
    ) -> Response:
        """A printable A4 sheet (PDF) of the unit's live links, or of the codes given (`code`
        repeated), with crop marks. Who: as listing links."""
        access.require_unit(unit)
        state = _unit_state(services, campaign, unit)
        live = state.live_links(unit)
        if code:
            wanted = set(code)
            unknown = wanted - {lk.code for lk in live}
            if unknown:
                raise HTTPException(
                    404, f"unit {unit!r} has no live link {sorted(unknown)[0]!r}")
            live = [lk for lk in live if lk.code in wanted]
        if not live:
            raise HTTPException(409, f"unit {unit!r} has no live link to print")
        base = _base_url(services, request)
        u = state.units[unit]
        province = state.provinces.get(u.province)
        title = state.definition.title or state.definition.campaign
        cards = [SheetCard(lk.code, lk.channel, link_url(base, lk.code)) for lk in live]
        body = await asyncio.to_thread(
            sheet_pdf, title, u.name, u.id, province.name if province else "", cards,
            dt.datetime.now(state.tz))
        return Response(body, media_type="application/pdf", headers={
            "content-disposition": f'attachment; filename="{unit}-sheet.pdf"',
            "cache-control": "private, no-store"})

    return router
