"""The one policy point of the read API: authenticates a request (bearer header, or a session
cookie for pages) and applies the rule its route declared (api/deps.py, core/access.py).

- 401 with `WWW-Authenticate: Bearer` for a missing, malformed, oversized, unknown, expired or
  revoked credential; 403 outside the role or the campaign; 429 with `Retry-After` once a client
  has failed too often. Every refusal is JSON with a `detail` (an HTML page for pages).
- A session cookie names its token by id, signed; the token is checked again on every request,
  so a revocation ends sessions too. A request that changes something and rides on the cookie
  needs the CSRF token (header `x-csrf-token`, or the form field) equal to the CSRF cookie.
- Neither a token nor its hash is ever logged here.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from fastapi import HTTPException, Request

from api.deps import Access, rule_of
from core.access import (
    ENV_ADMIN_LABEL,
    UNDECLARED,
    Authenticator,
    Caller,
    Denied,
    FailedAuthLimiter,
    Rule,
    authorize,
    unauthenticated,
)
from core.registry import Registry

SESSION_COOKIE = "si_session"
CSRF_COOKIE = "si_csrf"
CSRF_HEADER = "x-csrf-token"
SESSION_SECONDS = 12 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class PageDenied(HTTPException):
    """A refusal on an HTML page: rendered as a page that points at /portal."""


class Gate:
    def __init__(
        self,
        registry: Registry,
        admin_token: str,
        session_key: str,
        *,
        failures_per_minute: int = 30,
        secure_cookies: bool = False,
        admin_label: str = ENV_ADMIN_LABEL,
    ) -> None:
        self.registry = registry
        self.authenticator = Authenticator(registry, admin_token, admin_label)
        self.limiter = FailedAuthLimiter(limit=failures_per_minute)
        self._key = hmac.new(session_key.encode(), b"survey-ingest session v1",
                             hashlib.sha256).digest()
        self.secure_cookies = secure_cookies

    # -- the check every route runs -------------------------------------------------------

    async def check(self, request: Request, rule: Rule, *, page: bool = False) -> Access:
        campaign = request.path_params.get("campaign")
        state = self.registry.get(campaign) if isinstance(campaign, str) else None
        try:
            if rule.public or (rule.crowd and (
                    state is None or state.definition.visibility.leaderboard == "public")):
                return Access(rule, self._best_effort(request), state)
            caller = self.authenticate(request)
            authorize(rule, caller, campaign if isinstance(campaign, str) else None, state)
            return Access(rule, caller, state)
        except Denied as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
            if exc.retry_after:
                headers["Retry-After"] = str(exc.retry_after)
            kind = PageDenied if page else HTTPException
            raise kind(exc.status, exc.detail, headers=headers or None) from None

    def authenticate(self, request: Request) -> Caller | None:
        """The caller, None without any credential; Denied for a bad one (counted against
        the client) or for a client over its failure limit."""
        client = request.client.host if request.client else "?"
        now = time.monotonic()
        header = request.headers.get("authorization")
        cookie = request.cookies.get(SESSION_COOKIE)
        if header is None and cookie is None:
            return None
        wait = self.limiter.retry_after(client, now)
        if wait:
            raise Denied(429, "too many failed authentications; try again later", wait)
        try:
            if header is not None:
                token = self.authenticator.bearer(header)
                assert token is not None
                return self.authenticator.caller(token, dt.datetime.now(dt.UTC))
            assert cookie is not None
            if request.method not in SAFE_METHODS:
                self.check_csrf(request, request.headers.get(CSRF_HEADER))
            return self.session_caller(cookie)
        except Denied:
            self.limiter.failed(client, now)
            raise

    def _best_effort(self, request: Request) -> Caller | None:
        """On a public route a credential only adds knowledge; a bad one is ignored (a stale
        session cookie must not lock anyone out of the answering page)."""
        try:
            header = request.headers.get("authorization")
            if header is not None:
                token = self.authenticator.bearer(header)
                return self.authenticator.caller(token, dt.datetime.now(dt.UTC)) if token else None
            cookie = request.cookies.get(SESSION_COOKIE)
            return self.session_caller(cookie) if cookie else None
        except Denied:
            return None

    # -- sessions -------------------------------------------------------------------------

    def new_session(self, caller: Caller, expires_at: dt.datetime | None) -> tuple[str, int]:
        """A signed cookie value naming the caller's token, and its lifetime in seconds."""
        now = int(time.time())
        until = now + SESSION_SECONDS
        if expires_at is not None:
            until = min(until, int(expires_at.timestamp()))
        payload = {"t": caller.token_id, "e": until, "f": self.authenticator.admin_fingerprint}
        raw = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode())
        body = raw.decode().rstrip("=")
        return f"{body}.{self._sign(body)}", max(0, until - now)

    def session_caller(self, cookie: str) -> Caller:
        body, _, signature = cookie.partition(".")
        if len(cookie) > 512 or not hmac.compare_digest(self._sign(body), signature):
            raise unauthenticated("session not valid: sign in again")
        try:
            payload: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=="))
            token_id, until, fingerprint = str(payload["t"]), int(payload["e"]), payload["f"]
        except (ValueError, KeyError, TypeError):
            raise unauthenticated("session not valid: sign in again") from None
        if until <= time.time() or fingerprint != self.authenticator.admin_fingerprint:
            raise unauthenticated("session ended: sign in again")
        return self.authenticator.caller_by_id(token_id, dt.datetime.now(dt.UTC))

    def _sign(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()

    # -- CSRF (double submit: a random cookie, and the same value in the form or header) --

    @staticmethod
    def new_csrf() -> str:
        return secrets.token_urlsafe(32)

    @staticmethod
    def check_csrf(request: Request, presented: str | None) -> None:
        expected = request.cookies.get(CSRF_COOKIE) or ""
        if not expected or not presented or not hmac.compare_digest(
                expected.encode(), presented.encode()):
            raise Denied(403, "missing or wrong CSRF token: reload the page and try again")


async def deny_undeclared(request: Request) -> None:
    """App-wide: a route that declared no rule is admin-only (deny by default, CONTRACT §7)."""
    route = request.scope.get("route")
    if route is None:
        return
    declared = getattr(route, "_access_declared", None)  # found once per route, then kept on it
    if declared is None:
        declared = rule_of(getattr(route, "dependant", None)) is not None
        route._access_declared = declared
    if not declared:
        await request.app.state.gate.check(request, UNDECLARED)
