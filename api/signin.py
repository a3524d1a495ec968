"""The sign-in page (`/portal`): a token exchanged for a session cookie, and sign-out.

The portal's own pages (api/portal.py) use the session it makes; what this module owns is the
session itself: the cookie is HttpOnly,
SameSite=Strict and Secure when the public URL is https, and both forms carry a CSRF token
(double submit: a random cookie, echoed in a hidden field).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.auth import CSRF_COOKIE, SESSION_COOKIE, Gate
from api.deps import Access, public
from api.pages import _SECURITY_HEADERS, _default_assets, _head, e
from api.services import Services
from core.access import Caller, Denied

ROLE_NAMES = {"unit": "单位", "coordinator": "工作区协调人", "analyst": "分析人员",
              "admin": "管理员", "monitor": "监控"}
MAX_FORM_BYTES = 4096


def _safe_next(value: str) -> str:
    """Only a path on this site (no scheme, no `//host`): no open redirect."""
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/portal"


def build_signin_router(services: Services) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    asset_url = _default_assets().url

    css = asset_url

    def gate(request: Request) -> Gate:
        result: Gate = request.app.state.gate
        return result

    def page(request: Request, body: str, status: int = 200) -> HTMLResponse:
        response = HTMLResponse(
            _head("登录 · 问卷采集", css("survey.css"),
                  viewport="width=device-width, initial-scale=1")
            + f'<body class="notice-page portal">\n<main class="page">\n{body}</main>\n'
            "</body>\n</html>\n",
            status_code=status, headers=_SECURITY_HEADERS,
        )
        if not request.cookies.get(CSRF_COOKIE):
            # Readable by the portal's own script (same origin only, SameSite=Strict), which
            # echoes it in `x-csrf-token` on the API writes it makes with the session.
            response.set_cookie(CSRF_COOKIE, request.state.csrf, httponly=False,
                                samesite="strict", secure=gate(request).secure_cookies,
                                path="/")
        return response

    def csrf_of(request: Request) -> str:
        request.state.csrf = request.cookies.get(CSRF_COOKIE) or Gate.new_csrf()
        return str(request.state.csrf)

    def sign_in_form(request: Request, next_path: str, error: str = "") -> str:
        message = f'<p class="form-error" role="alert">{e(error)}</p>\n' if error else ""
        return (
            '<section class="card notice">\n<h1>登录</h1>\n'
            "<p>请输入您收到的访问令牌（以 sik_ 开头）。</p>\n" + message
            + '<form method="post" action="/portal/session">\n'
            f'<input type="hidden" name="csrf" value="{e(csrf_of(request))}">\n'
            f'<input type="hidden" name="next" value="{e(next_path)}">\n'
            '<label for="token">访问令牌</label>\n'
            '<input id="token" name="token" type="password" autocomplete="off" required '
            'maxlength="200" spellcheck="false">\n'
            '<div class="actions"><button class="primary" type="submit">登录</button></div>\n'
            "</form>\n</section>\n"
        )

    def signed_in(request: Request, caller: Caller) -> str:
        scope = caller.unit or caller.work_region
        campaign = "全部调查活动" if caller.campaign == "*" else caller.campaign
        display = (f'<p><a href="/display/{e(caller.campaign)}">实时看板</a></p>\n'
                   if caller.campaign != "*" else "")
        return (
            '<section class="card notice">\n<h1>已登录</h1>\n'
            f'<p id="who">{e(caller.label)} · {e(ROLE_NAMES.get(caller.role.value, ""))}'
            f"{' · ' + e(scope) if scope else ''} · {e(campaign)}</p>\n" + display
            + '<form method="post" action="/portal/signout">\n'
            f'<input type="hidden" name="csrf" value="{e(csrf_of(request))}">\n'
            '<div class="actions"><button class="primary" type="submit">退出登录</button></div>\n'
            "</form>\n</section>\n"
        )

    async def form(request: Request) -> dict[str, str]:
        """The urlencoded form; an oversized one reads as empty (and fails its CSRF check)."""
        raw = await request.body()
        if len(raw) > MAX_FORM_BYTES:
            return {}
        fields = parse_qs(raw.decode("utf-8", "replace"), max_num_fields=10)
        return {k: v[0] for k, v in fields.items()}

    @router.get("/portal", response_class=HTMLResponse)
    async def portal(request: Request, access: Annotated[Access, public()],
                     next: str = "/portal") -> HTMLResponse:
        if access.caller is not None and request.cookies.get(SESSION_COOKIE):
            return page(request, signed_in(request, access.caller))
        return page(request, sign_in_form(request, _safe_next(next)))

    @router.post("/portal/session", dependencies=[public()])
    async def sign_in(request: Request) -> Response:
        g = gate(request)
        fields = await form(request)
        next_path = _safe_next(fields.get("next", "/portal"))
        client = request.client.host if request.client else "?"
        now = time.monotonic()
        try:
            g.check_csrf(request, fields.get("csrf"))
            wait = g.limiter.retry_after(client, now)
            if wait:
                raise Denied(429, "登录失败次数过多，请稍后再试。", wait)
            try:
                caller = g.authenticator.caller(fields.get("token", "").strip(),
                                                dt.datetime.now(dt.UTC))
            except Denied:
                g.limiter.failed(client, now)
                raise Denied(401, "令牌无效、已过期或已被撤销。") from None
        except Denied as exc:
            message = exc.detail if exc.status != 403 else "页面已过期，请刷新后重试。"
            response = page(request, sign_in_form(request, next_path, message), exc.status)
            if exc.retry_after:
                response.headers["retry-after"] = str(exc.retry_after)
            return response
        record = services.registry.tokens.get(caller.token_id)
        value, max_age = g.new_session(caller, record.expires_at if record else None)
        redirect = RedirectResponse(next_path, status_code=303)
        redirect.set_cookie(SESSION_COOKIE, value, max_age=max_age, httponly=True,
                            samesite="strict", secure=g.secure_cookies, path="/")
        return redirect

    @router.post("/portal/signout", dependencies=[public()])
    async def sign_out(request: Request) -> Response:
        fields = await form(request)
        try:
            gate(request).check_csrf(request, fields.get("csrf"))
        except Denied:
            stale = "页面已过期，请刷新后重试。"
            return page(request, sign_in_form(request, "/portal", stale), 403)
        response = RedirectResponse("/portal", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                               secure=gate(request).secure_cookies)
        return response

    return router
