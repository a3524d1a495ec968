"""What every route of the read API declares: its path types and who may call it.

A route states its rule with one of the dependencies below, as a parameter when the handler needs
to know the caller, or in `dependencies=[...]` when it does not:

    @router.get("/v1/campaigns/{campaign}/counts")
    async def counts(campaign: CampaignId, access: Annotated[Access, scoped_read(COUNTS)]): ...
        filters = access.narrow(filters)          # 403 outside the caller's scope, else AND-ed
        return {..., "scope": access.scope}

    @router.post("/v1/admin/...", dependencies=[admin_only()])

The check itself is api/auth.py (`Gate`), the rules core/access.py; a route that declares nothing
is admin-only at run time and fails tests/security/test_access_declarations.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.routing import BaseRoute

from core.access import (
    CROWD,
    PUBLIC,
    Caller,
    Rule,
    in_region,
    region_units,
)
from core.ports import RegionFilter
from core.registry import CampaignState
from schemas.access import Role

CAMPAIGN_PATTERN = r"^[A-Za-z0-9_.:-]+$"
CampaignId = Annotated[str, Path(min_length=1, max_length=64, pattern=CAMPAIGN_PATTERN)]
SubmissionIdPath = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
]
TokenIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
UnitId = Annotated[str, Path(min_length=1, max_length=64, pattern=CAMPAIGN_PATTERN)]
LinkCodePath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]

# Only so the OpenAPI document names the bearer scheme on protected routes; the header is read
# and judged by the Gate (a bad one is a 401 with our detail, never FastAPI's 403).
BEARER = HTTPBearer(auto_error=False, description="an access token: `sik_...`")

# Roles per row of CONTRACT §7's table.
COUNTS = (Role.unit, Role.coordinator, Role.analyst, Role.admin)
ANALYSIS = (Role.coordinator, Role.analyst, Role.admin)  # distributions, reports, exports
FINDINGS = ANALYSIS
LINKS_LIST = (Role.unit, Role.coordinator, Role.analyst, Role.admin)
LINKS_WRITE = (Role.unit, Role.admin)
REVIEW_READ = (Role.analyst, Role.admin)
METRICS = (Role.monitor, Role.admin)


@dataclass(frozen=True)
class Access:
    """What a handler learns about its caller. `caller` is None for an anonymous call."""

    rule: Rule
    caller: Caller | None
    state: CampaignState | None

    @property
    def scope(self) -> dict[str, str]:
        """The scope a scoped read was narrowed to, for the answer: {} when not narrowed."""
        if not self.rule.scoped or self.caller is None:
            return {}
        return self.caller.scope

    @property
    def role(self) -> Role | None:
        return self.caller.role if self.caller else None

    def narrow(self, filters: RegionFilter) -> RegionFilter:
        """`filters` AND-ed with the caller's scope; 403 when they ask for something outside
        it (another unit, a province, region or link outside it), never an empty answer."""
        scope = self.scope
        if not scope or self.state is None:
            return filters
        state = self.state
        if "unit" in scope:
            unit = scope["unit"]
            own = state.units.get(unit)
            province = own.province if own else ""
            region = state.provinces[province].work_region if province in state.provinces else ""
            link = state.links.get(filters.link) if filters.link else None
            outside = (
                (filters.unit is not None and filters.unit != unit)
                or (filters.province is not None and filters.province != province)
                or (filters.work_region is not None and filters.work_region != region)
                or (filters.link is not None and (link is None or link.unit != unit))
            )
            if outside:
                raise HTTPException(403, f"outside this token's scope (unit {unit!r})")
            return dataclasses.replace(filters, unit=unit)
        region = scope["work_region"]
        outside = (
            (filters.work_region is not None and filters.work_region != region)
            or (filters.province is not None
                and not in_region(state, region, province=filters.province))
            or (filters.unit is not None and not in_region(state, region, unit=filters.unit))
            or (filters.link is not None and not in_region(state, region, link=filters.link))
        )
        if outside:
            raise HTTPException(403, f"outside this token's scope (work region {region!r})")
        return dataclasses.replace(filters, work_region=region)

    def units_in_scope(self) -> set[str] | None:
        """The units a scoped caller may see; None: every unit."""
        scope = self.scope
        if not scope or self.state is None:
            return None
        if "unit" in scope:
            return {scope["unit"]}
        return region_units(self.state, scope["work_region"])

    def require_unit(self, unit: str) -> None:
        """403 unless the unit is in the caller's scope (for routes about one unit, e.g. a
        unit's links: `/units/{unit}/links`)."""
        units = self.units_in_scope()
        if units is not None and unit not in units:
            raise HTTPException(403, f"outside this token's scope {self.scope}")

    def require_link(self, code: str) -> None:
        """403 unless the link's unit is in the caller's scope (an unknown link: 403 too)."""
        units = self.units_in_scope()
        if units is None:
            return
        link = self.state.links.get(code) if self.state else None
        if link is None or link.unit not in units:
            raise HTTPException(403, f"outside this token's scope {self.scope}")

    def sees_province(self, province: str) -> bool:
        scope = self.scope
        if not scope or self.state is None:
            return True
        if "unit" in scope:
            unit = self.state.units.get(scope["unit"])
            return unit is not None and unit.province == province
        return in_region(self.state, scope["work_region"], province=province)

    def sees_region(self, work_region: str) -> bool:
        scope = self.scope
        if not scope or self.state is None:
            return True
        if "unit" in scope:
            return False
        return scope["work_region"] == work_region


Check = Callable[..., Coroutine[Any, Any, Access]]


def declare(rule: Rule, *, page: bool = False) -> Any:
    """The dependency a route declares its rule with (the Gate on the app does the checking).
    `page`: a refusal is an HTML page pointing at the sign-in page, not JSON."""
    if rule.public:
        async def check_public(request: Request) -> Access:
            result: Access = await request.app.state.gate.check(request, rule, page=page)
            return result

        check: Check = check_public
    else:
        async def check_protected(
            request: Request,
            _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
        ) -> Access:
            result: Access = await request.app.state.gate.check(request, rule, page=page)
            return result

        check = check_protected
    check.__access_rule__ = rule  # type: ignore[attr-defined]
    return Depends(check)


def public() -> Any:
    """Anyone, no token (a valid token presented anyway still makes `access.caller`)."""
    return declare(PUBLIC)


def crowd(*, page: bool = False) -> Any:
    """The crowd surfaces: public unless the campaign's leaderboard is private."""
    return declare(CROWD, page=page)


def allow(*roles: Role) -> Any:
    """These roles, bound to the route's campaign (if it has one); reads not narrowed."""
    return declare(Rule(roles=frozenset(roles)))


def scoped_read(roles: tuple[Role, ...]) -> Any:
    """These roles; a `unit` or `coordinator` caller's reads are narrowed to its scope, which the
    handler does with `Access.narrow` / `units_in_scope` and names with `Access.scope`."""
    return declare(Rule(roles=frozenset(roles), scoped=True))


def admin_only() -> Any:
    return declare(Rule(roles=frozenset({Role.admin})))


def rule_of(dependant: Any) -> Rule | None:
    """The rule a route declared, found among its dependencies (None: it declared none)."""
    for dep in getattr(dependant, "dependencies", ()):
        rule = getattr(dep.call, "__access_rule__", None)
        if isinstance(rule, Rule):
            return rule
        found = rule_of(dep)
        if found is not None:
            return found
    return None


def all_routes(routes: Sequence[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route of an app, those of included routers too (FastAPI >= 0.13x keeps included
    routers as lazy branches in `app.routes`)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: included routes are copied into app.routes
        yield from routes
        return
    for context in iter_route_contexts(routes):
        yield context.route
