"""The route table of CONTRACT §7, written out independently of the code: who may call every
route. The declaration test, the README test and the HTTP matrix are all generated from it, so
a route added without a line here (or with a rule that differs) fails them."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.access import Role


@dataclass(frozen=True)
class Expect:
    """`public`: anyone. `crowd`: anyone unless the campaign is private, then any token of the
    campaign but `monitor`. Else `roles`, bound to the route's campaign; `scoped`: unit and
    coordinator reads are narrowed to their scope (403 outside it)."""

    roles: frozenset[Role] = frozenset()
    public: bool = False
    crowd: bool = False
    scoped: bool = False


PUBLIC = Expect(public=True)
CROWD = Expect(crowd=True, roles=frozenset({Role.unit, Role.coordinator, Role.analyst,
                                            Role.admin}))
ADMIN = Expect(roles=frozenset({Role.admin}))
U, C, A, M = Role.unit, Role.coordinator, Role.analyst, Role.monitor


def roles(*rs: Role, scoped: bool = False) -> Expect:
    return Expect(roles=frozenset({*rs, Role.admin}), scoped=scoped)


CAMPAIGN = "/v1/campaigns/{campaign}"
TABLE: dict[tuple[str, str], Expect] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): roles(M),
    ("POST", "/v1/submissions"): PUBLIC,
    ("GET", "/v1/campaigns"): PUBLIC,
    ("GET", CAMPAIGN): PUBLIC,
    ("GET", CAMPAIGN + "/submissions/{submission_id}"): PUBLIC,
    ("GET", CAMPAIGN + "/leaderboard"): CROWD,
    ("GET", CAMPAIGN + "/live"): CROWD,
    ("GET", CAMPAIGN + "/pacing"): CROWD,
    ("GET", "/display/{campaign}"): CROWD,
    ("GET", CAMPAIGN + "/counts"): roles(U, C, A, scoped=True),
    ("GET", CAMPAIGN + "/questions/{question_id}/distribution"): roles(C, A, scoped=True),
    ("GET", CAMPAIGN + "/findings"): roles(C, A, scoped=True),
    ("GET", CAMPAIGN + "/reports/eligible"): roles(C, A, scoped=True),
    ("PUT", "/v1/admin/campaigns/{campaign}"): ADMIN,
    ("POST", "/v1/admin/campaigns/{campaign}/reviews"): ADMIN,
    ("GET", "/v1/admin/campaigns/{campaign}/reviews"): roles(A),
    ("POST", "/v1/admin/campaigns/{campaign}/median"): ADMIN,
    ("POST", "/v1/admin/campaigns/{campaign}/freeze"): ADMIN,
    ("POST", "/v1/admin/tokens"): ADMIN,
    ("GET", "/v1/admin/tokens"): ADMIN,
    ("DELETE", "/v1/admin/tokens/{token_id}"): ADMIN,
    ("GET", "/v1/admin/audit"): ADMIN,
    ("GET", "/static/{name}"): PUBLIC,
    ("GET", "/s/{link_code:path}"): PUBLIC,
    ("POST", "/s/{link_code}/open"): PUBLIC,
    ("GET", "/portal"): PUBLIC,
    ("POST", "/portal/session"): PUBLIC,
    ("POST", "/portal/signout"): PUBLIC,
    ("GET", "/portal/{campaign}/unit/{unit}"): PUBLIC,  # a shell: the API decides what it shows
    ("GET", "/portal/{campaign}/region/{region}"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", CAMPAIGN + "/units/{unit}/links"): roles(U, C, A, scoped=True),
    ("POST", CAMPAIGN + "/units/{unit}/links"): roles(U, scoped=True),
    ("DELETE", CAMPAIGN + "/links/{code}"): roles(U, scoped=True),
    ("GET", CAMPAIGN + "/units/{unit}/links/{code}/qr.{kind}"): roles(U, C, A, scoped=True),
    ("GET", CAMPAIGN + "/units/{unit}/sheet.pdf"): roles(U, C, A, scoped=True),
    ("GET", CAMPAIGN + "/export"): roles(C, A, scoped=True),
    ("GET", CAMPAIGN + "/export/codebook"): roles(C, A, scoped=True),
}
# FastAPI's own documentation routes (not APIRoutes): public.
DOCS = {"/openapi.json"}
