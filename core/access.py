"""Who may call what (CONTRACT §7): tokens, the callers they make, route rules and their scope.

Pure logic, shared by every HTTP edge (the read API in both runtimes and the collector's own
routes). A token is found by the sha256 of what was presented (a dict lookup, so no string
compare whose timing depends on the secret); the global `SURVEY_ADMIN_TOKEN` is compared the
same way, by hash.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field

from core.registry import CampaignState, Registry, TokenRecord
from schemas.access import ALL_CAMPAIGNS, Role

TOKEN_PREFIX = "sik_"
# The longest Authorization value read at all; longer is a 401 (never parsed, never a 5xx).
MAX_CREDENTIAL_CHARS = 512
ENV_ADMIN_ID = "env-admin"
ENV_ADMIN_LABEL = "SURVEY_ADMIN_TOKEN"
EVERY_ROLE = frozenset(Role)


def new_token() -> str:
    """`sik_` + 256 random bits (43 URL-safe characters)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def new_token_id() -> str:
    return "tok_" + secrets.token_hex(8)


@dataclass(frozen=True)
class Caller:
    """Who is calling, once authenticated. `campaign` "*" means every campaign."""

    token_id: str
    label: str
    role: Role
    campaign: str
    unit: str = ""
    work_region: str = ""

    def bound_to(self, campaign: str) -> bool:
        return self.campaign in (ALL_CAMPAIGNS, campaign)

    @property
    def scope(self) -> dict[str, str]:
        """What a scoped read is narrowed to, as it is named in the answer."""
        if self.role is Role.unit:
            return {"unit": self.unit}
        if self.role is Role.coordinator:
            return {"work_region": self.work_region}
        return {}


ANONYMOUS = None


@dataclass(frozen=True)
class Rule:
    """A route's declaration. `public`: anyone. `crowd`: anyone unless the campaign says
    `visibility: {leaderboard: private}`, then any token of the campaign (not `monitor`).
    Otherwise `roles` may call it; `scoped`: the handler narrows what it reads to the caller's
    scope (unit, work region) and names it in the answer."""

    roles: frozenset[Role] = frozenset()
    public: bool = False
    crowd: bool = False
    scoped: bool = False
    # False only for the default a route without a declaration gets (admin alone).
    declared: bool = True

    def describe(self) -> str:
        if self.public:
            return "public"
        if self.crowd:
            return "public unless private (then any campaign token)"
        roles = ", ".join(r.value for r in Role if r in self.roles)
        return roles + (" (scoped)" if self.scoped else "")


PUBLIC = Rule(public=True)
CROWD = Rule(crowd=True, roles=frozenset({Role.unit, Role.coordinator, Role.analyst, Role.admin}))
ADMIN_ONLY = Rule(roles=frozenset({Role.admin}))
UNDECLARED = Rule(roles=frozenset({Role.admin}), declared=False)


class Denied(Exception):
    """A refusal: 401 (who are you?), 403 (not you, not this) or 429 (too many failures)."""

    def __init__(self, status: int, detail: str, retry_after: int = 0) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after


def unauthenticated(detail: str) -> Denied:
    return Denied(401, detail)


def forbidden(detail: str) -> Denied:
    return Denied(403, detail)


class Authenticator:
    """Turns a presented credential into a Caller, against the registry's tokens (read on every
    call, so an issue or revocation folded a moment ago applies at once)."""

    def __init__(
        self, registry: Registry, admin_token: str, admin_label: str = ENV_ADMIN_LABEL
    ) -> None:
        self.registry = registry
        # Only the hash is kept; an empty setting means no global admin token at all.
        self._admin_sha256 = token_sha256(admin_token) if admin_token else ""
        # Whom the global admin token stands for on the audit trail.
        self.admin_label = admin_label

    def bearer(self, authorization: str | None) -> str | None:
        """The token in an Authorization header; None when there is none; Denied(401) when the
        header is there but not `Bearer <token>` or is oversized."""
        if authorization is None:
            return None
        if len(authorization) > MAX_CREDENTIAL_CHARS:
            raise unauthenticated("authorization header too long")
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value or " " in value:
            raise unauthenticated("authorization must be 'Bearer <token>'")
        return value

    def caller(self, token: str, now: dt.datetime) -> Caller:
        """The caller a token makes, or Denied(401) for an unknown, expired or revoked one."""
        if len(token) > MAX_CREDENTIAL_CHARS or not token.isascii():
            raise unauthenticated("unknown token")
        digest = token_sha256(token)
        if self._admin_sha256 and hmac.compare_digest(digest, self._admin_sha256):
            return Caller(ENV_ADMIN_ID, self.admin_label, Role.admin, ALL_CAMPAIGNS)
        token_id = self.registry.token_by_sha256.get(digest)
        record = self.registry.tokens.get(token_id) if token_id else None
        if record is None:
            raise unauthenticated("unknown token")
        return caller_of(record, now)

    def caller_by_id(self, token_id: str, now: dt.datetime) -> Caller:
        """The caller of a session (which names its token by id), checked as the token is."""
        if token_id == ENV_ADMIN_ID and self._admin_sha256:
            return Caller(ENV_ADMIN_ID, self.admin_label, Role.admin, ALL_CAMPAIGNS)
        record = self.registry.tokens.get(token_id)
        if record is None:
            raise unauthenticated("session ended: sign in again")
        return caller_of(record, now)

    @property
    def admin_fingerprint(self) -> str:
        """Changes when SURVEY_ADMIN_TOKEN does, so a session made with the old one ends."""
        return self._admin_sha256[:16]


def caller_of(record: TokenRecord, now: dt.datetime) -> Caller:
    if record.revoked_at is not None and record.revoked_at <= now:
        raise unauthenticated("token revoked")
    if record.expires_at is not None and record.expires_at <= now:
        raise unauthenticated("token expired")
    return Caller(record.token_id, record.label, record.role, record.campaign, record.unit,
                  record.work_region)


def authorize(
    rule: Rule, caller: Caller | None, campaign: str | None, state: CampaignState | None
) -> None:
    """Raise Denied unless `caller` (None: no credential) may call a route with `rule` on
    `campaign` (None for routes about no campaign). A route about an unknown campaign is left
    to answer its own 404 once the role allows it."""
    if rule.public:
        return
    if rule.crowd and (state is None or state.definition.visibility.leaderboard == "public"):
        return
    if caller is None:
        raise unauthenticated("a token is needed here")
    if caller.role not in rule.roles:
        raise forbidden(f"a {caller.role.value} token may not do this")
    if campaign is not None and not caller.bound_to(campaign):
        raise forbidden(f"this token is for campaign {caller.campaign!r}")


@dataclass
class FailedAuthLimiter:
    """Counts failed authentications per client in a sliding window; past `limit` within
    `window_s`, the client is answered 429 until the oldest failure ages out. Bounded: the
    least recently failing clients are forgotten first."""

    limit: int = 30
    window_s: float = 60.0
    max_clients: int = 100_000
    _failures: OrderedDict[str, list[float]] = field(default_factory=OrderedDict)

    def retry_after(self, client: str, now: float) -> int:
        """Seconds until `client` may try again; 0 when it may now."""
        if self.limit <= 0:
            return 0
        times = [t for t in self._failures.get(client, ()) if now - t < self.window_s]
        if len(times) < self.limit:
            return 0
        return max(1, int(times[0] + self.window_s - now + 0.999))

    def failed(self, client: str, now: float) -> None:
        if self.limit <= 0:
            return
        times = [t for t in self._failures.pop(client, []) if now - t < self.window_s]
        times.append(now)
        self._failures[client] = times[-self.limit:]
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)


def in_region(state: CampaignState, work_region: str, *, unit: str | None = None,
              province: str | None = None, link: str | None = None) -> bool:
    """Whether a unit, province or link of the campaign lies in the work region."""
    if unit is not None:
        u = state.units.get(unit)
        p = state.provinces.get(u.province) if u else None
        return p is not None and p.work_region == work_region
    if province is not None:
        p = state.provinces.get(province)
        return p is not None and p.work_region == work_region
    if link is not None:
        lk = state.links.get(link)
        return lk is not None and in_region(state, work_region, unit=lk.unit)
    return False


def region_units(state: CampaignState, work_region: str) -> set[str]:
    return {u for u in state.units if in_region(state, work_region, unit=u)}


def check_bearer(
    authenticator: Authenticator,
    limiter: FailedAuthLimiter,
    rule: Rule,
    authorization: str | None,
    client: str,
    now_monotonic: float,
) -> Caller:
    """The whole check for a route about no campaign, bearer header only (the collector's
    /metrics): Denied(401/403/429) or the caller."""
    if authorization is None:
        raise unauthenticated("a token is needed here")
    wait = limiter.retry_after(client, now_monotonic)
    if wait:
        raise Denied(429, "too many failed authentications; try again later", wait)
    try:
        token = authenticator.bearer(authorization)
        assert token is not None
        caller = authenticator.caller(token, dt.datetime.now(dt.UTC))
    except Denied:
        limiter.failed(client, now_monotonic)
        raise
    authorize(rule, caller, None, None)
    return caller


METRICS_RULE = Rule(roles=frozenset({Role.monitor, Role.admin}))
