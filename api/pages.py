"""The HTML pages people see: the answering page behind each link and the live display screen.

Everything an organiser wrote (names, labels, options) is escaped on the way into the HTML, and
data for the page scripts travels in a JSON block that cannot close its own script element. The
pages load their scripts and styles from this app only (no CDN), under a strict CSP.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from api.assets import Assets, default_sources
from api.deps import crowd, public
from api.services import Services
from core.registry import CampaignState, Registry
from schemas.campaign import (
    AttentionQuestion,
    MultiQuestion,
    Phase,
    Question,
    ScaleQuestion,
    SingleQuestion,
)

log = logging.getLogger(__name__)

_LINK_CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CAMPAIGN_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

# Pages run only our own scripts and styles; a slip in escaping still cannot execute anything.
_SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
# The answering page and the display shell may be kept by any cache for this long, so a proxy or
# CDN serves page views; a revoked link's page is gone within it (its POSTs are refused at once:
# judging reads the registry, not a page).
PAGE_MAX_AGE_S = 10
_CACHEABLE = {**_SECURITY_HEADERS, "cache-control": f"public, max-age={PAGE_MAX_AGE_S}"}

AGE_GROUPS = (
    ("under-18", "18岁以下"), ("18-24", "18–24岁"), ("25-34", "25–34岁"),
    ("35-44", "35–44岁"), ("45-54", "45–54岁"), ("55-64", "55–64岁"), ("65+", "65岁及以上"),
)
PHASE_NAMES = {"internal_test": "内部测试", "public_test": "公开测试", "collection": "正式采集"}


def e(value: object) -> str:
    """Escape for HTML text and quoted attribute values."""
    return html.escape(str(value), quote=True)


def json_for_script(data: object) -> str:
    """JSON safe inside <script type="application/json">: no `</script>`, no `<!--`."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def find_link(registry: Registry, code: str, now: dt.datetime) -> CampaignState | None:
    """The campaign a link code belongs to. Codes are unique within a campaign only: when several
    campaigns have it, the one whose phase covers `now` wins, else the newest."""
    candidates = [s for s in registry.campaigns.values() if code in s.links]
    if not candidates:
        return None
    current = [s for s in candidates if s.phase_at(now) is not None]
    order = {id(s): i for i, s in enumerate(registry.campaigns.values())}
    return max(current or candidates, key=lambda s: (_newness(s.definition.phases), order[id(s)]))


def _newness(phases: Iterable[Phase]) -> tuple[dt.date, dt.date]:
    ps = list(phases)
    return max(p.end for p in ps), max(p.start for p in ps)


def build_pages_router(services: Services, assets: Assets | None = None) -> APIRouter:
    """The pages; their scripts and styles are served by api/assets.py under hashed names."""
    router = APIRouter(include_in_schema=False)
    asset_url = (assets or Assets(default_sources())).url
    opens = services.open_counter

    def page(body: str, status: int = 200, *, cacheable: bool = False) -> HTMLResponse:
        return HTMLResponse(
            body, status_code=status, headers=_CACHEABLE if cacheable else _SECURITY_HEADERS
        )

    def notice(status: int, title: str, message: str, *, cacheable: bool = False) -> HTMLResponse:
        return page(_notice_page(asset_url, title, message), status, cacheable=cacheable)

    # Rendered answering pages by (link, phase), valid while the campaign's state object is the
    # one they were rendered from (a definition, median or review replaces it). A revoked link
    # never gets here: the handler checks revocation first, on every request.
    rendered: dict[tuple[str, str, str | None], tuple[CampaignState, str]] = {}

    def answering_html(state: CampaignState, code: str, now: dt.datetime) -> str:
        phase = state.phase_at(now)
        key = (state.definition.campaign, code, phase.name if phase else None)
        found = rendered.get(key)
        if found is not None and found[0] is state:
            return found[1]
        html_text = _answering_page(asset_url, state, code, now)
        if len(rendered) >= 4096:
            rendered.clear()  # bounded; refilled by the links actually opened
        rendered[key] = (state, html_text)
        return html_text

    @router.get("/s/{link_code:path}", response_class=HTMLResponse, dependencies=[public()])
    async def answering_page(link_code: str) -> HTMLResponse:
        try:
            if not _LINK_CODE.match(link_code):
                return notice(404, "链接无效", "未找到该问卷链接，请核对链接或二维码是否完整。")
            now = dt.datetime.now(dt.UTC)
            state = find_link(services.registry, link_code, now)
            if state is None:
                return notice(404, "链接无效", "未找到该问卷链接，请核对链接或二维码是否完整。")
            if state.link_revoked_at(link_code, now):
                return notice(410, "链接已停用", "该问卷链接已停止使用，感谢您的关注。",
                              cacheable=True)
            # Not counted here: the page may come from a cache (nginx, a CDN); its script
            # reports the load itself (`POST /s/{code}/open`, below).
            return page(answering_html(state, link_code, now), cacheable=True)
        except Exception:  # a stack trace is a bug; the respondent gets a page
            log.exception("answering page for %r failed", link_code)
            return notice(500, "服务暂时不可用", "请稍后刷新页面重试。")

    @router.post("/s/{link_code}/open", status_code=204, dependencies=[public()])
    async def page_opened(link_code: str) -> Response:
        """One load of a live link's answering page, reported by the page's script (a cached
        page never reaches the handler above). Counted, not logged: one in-memory increment
        (api/opens.py); an unknown or revoked link counts nothing. Always 204."""
        if _LINK_CODE.match(link_code):
            now = dt.datetime.now(dt.UTC)
            state = find_link(services.registry, link_code, now)
            if state is not None and not state.link_revoked_at(link_code, now):
                opens.hit(state.definition.campaign, link_code)
        return Response(status_code=204, headers={"cache-control": "no-store"})

    # Private campaigns: a session (signed in on /portal) or a bearer token; the page's own
    # requests (/live, /pacing) carry the same session cookie.
    @router.get("/display/{campaign}", response_class=HTMLResponse,
                dependencies=[crowd(page=True)])
    async def display_page(campaign: str) -> HTMLResponse:
        try:
            state = services.registry.get(campaign) if _CAMPAIGN_ID.match(campaign) else None
            if state is None:
                return notice(404, "活动不存在", "未找到该调查活动，请核对地址。")
            # A private campaign's page is for signed-in screens: never in a shared cache.
            public = state.definition.visibility.leaderboard == "public"
            return page(_display_page(asset_url, state), cacheable=public)
        except Exception:
            log.exception("display page for %r failed", campaign)
            return notice(500, "服务暂时不可用", "请稍后刷新页面重试。")

    return router


@functools.cache
def _default_assets() -> Assets:
    return Assets(default_sources())


def denied_page(status: int, path: str, headers: Mapping[str, str] | None) -> HTMLResponse:
    """A page refused for want of a session: say so, and point at the sign-in page."""
    asset_url = _default_assets().url
    if status == 401:
        title, message = "需要登录", "此页面仅对持有访问令牌的用户开放，请先登录。"
    elif status == 429:
        title, message = "尝试过于频繁", "登录失败次数过多，请稍后再试。"
    else:
        title, message = "无权访问", "您的访问令牌无权查看此页面。"
    body = _notice_page(asset_url, title, message).replace(
        "</section>", f'<p><a href="/portal?next={e(path)}">前往登录</a></p>\n</section>', 1)
    return HTMLResponse(body, status_code=status, headers={**_SECURITY_HEADERS, **(headers or {})})


def _head(title: str, stylesheet: str, *, viewport: str) -> str:
    return (
        '<!doctype html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="{e(viewport)}">\n'
        '<meta name="robots" content="noindex">\n'
        '<meta name="format-detection" content="telephone=no">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>{e(title)}</title>\n"
        f'<link rel="stylesheet" href="{e(stylesheet)}">\n</head>\n'
    )


_MOBILE = "width=device-width, initial-scale=1, viewport-fit=cover"


def _notice_page(asset_url: Callable[[str], str], title: str, message: str) -> str:
    return (
        _head(title, asset_url("survey.css"), viewport=_MOBILE)
        + '<body class="notice-page">\n<main class="page">\n<section class="card notice">\n'
        f"<h1>{e(title)}</h1>\n<p>{e(message)}</p>\n</section>\n</main>\n</body>\n</html>\n"
    )


def _question_html(index: int, q: Question) -> str:
    label = q.label or q.id
    name = f"q{index}"
    required = '<span class="req" aria-label="必答">*</span>' if q.required else ""
    hint = ""
    if isinstance(q, ScaleQuestion):
        hint = f"请在 {q.min}（最低）到 {q.max}（最高）之间选择"
        cells = "".join(
            f'<label class="scale-cell"><input type="radio" name="{name}" value="{v}">'
            f"<span>{v}</span></label>"
            for v in range(q.min, q.max + 1)
        )
        body = f'<div class="scale" role="radiogroup">{cells}</div>'
    elif isinstance(q, SingleQuestion | AttentionQuestion):
        # An attention check looks like any single-choice item: its label is the instruction.
        hint = "单选"
        body = "".join(
            f'<label class="choice"><input type="radio" name="{name}" value="{e(opt)}">'
            f"<span>{e(opt)}</span></label>"
            for opt in q.options
        )
    elif isinstance(q, MultiQuestion):
        limit = q.max_choices if q.max_choices and q.max_choices < len(q.options) else None
        hint = f"多选，最多选 {limit} 项" if limit else "多选"
        body = "".join(
            f'<label class="choice"><input type="checkbox" name="{name}" value="{e(opt)}">'
            f"<span>{e(opt)}</span></label>"
            for opt in q.options
        )
    else:
        body = (
            f'<textarea name="{name}" rows="4" maxlength="{q.max_length}" '
            f'aria-labelledby="{name}-label"></textarea>'
            f'<p class="counter" aria-hidden="true"><span>0</span>/{q.max_length}</p>'
        )
    hint_html = f'<p class="hint">{e(hint)}</p>' if hint else ""
    return (
        f'<fieldset class="card q" data-index="{index}">'
        f'<legend id="{name}-label"><span class="qno">{index + 1}.</span>'
        f'<span class="qtext">{e(label)}</span>{required}</legend>'
        f"{hint_html}{body}"
        f'<p class="field-error" role="alert" hidden></p></fieldset>\n'
    )


def _questions_json(qs: list[Question]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for q in qs:
        item: dict[str, Any] = {"id": q.id, "type": q.type, "required": q.required}
        if isinstance(q, ScaleQuestion):
            item.update(min=q.min, max=q.max)
        elif isinstance(q, MultiQuestion):
            item["max_choices"] = q.max_choices
        elif isinstance(q, AttentionQuestion):
            item["type"] = "single"  # answered like one; the expected answer is not sent
        elif not isinstance(q, SingleQuestion):
            item["max_length"] = q.max_length
        out.append(item)
    return out


def _answering_page(
    asset_url: Callable[[str], str], state: CampaignState, code: str, now: dt.datetime
) -> str:
    defn = state.definition
    questionnaire = defn.questionnaire
    link = state.links[code]
    unit = state.units.get(link.unit)
    phase = state.phase_at(now)
    if phase is None:
        banner = '<p class="banner warn">本问卷当前不在开放时间内，提交的答卷将不会被计入统计。</p>'
    elif not phase.counts:
        banner = '<p class="banner">当前为测试阶段，提交的答卷不计入正式统计。</p>'
    else:
        banner = ""
    organiser = (
        f'<p class="organiser">发放单位：<span class="unit-name">{e(unit.name)}</span></p>'
        if unit else ""
    )
    provinces = "".join(
        f'<option value="{e(p.id)}">{e(p.name)}</option>' for p in defn.provinces
    )
    ages = "".join(f'<option value="{e(v)}">{e(t)}</option>' for v, t in AGE_GROUPS)
    questions = "".join(_question_html(i, q) for i, q in enumerate(questionnaire.questions))
    data = {
        "campaign": defn.campaign,
        "link_code": code,
        "questionnaire_version": questionnaire.version,
        "submit_url": "/v1/submissions",
        "open_url": f"/s/{code}/open",
        "questions": _questions_json(list(questionnaire.questions)),
    }
    return (
        _head("问卷调查", asset_url("survey.css"), viewport=_MOBILE)
        + '<body>\n<main class="page">\n'
        '<header class="masthead">\n'
        f'<p class="eyebrow">调查活动 {e(defn.campaign)}</p>\n'
        "<h1>问卷调查</h1>\n"
        f"{organiser}\n"
        '<p class="intro">感谢您抽出时间参与本次调查。'
        '标 <span class="req">*</span> 的题目为必答题；您的回答仅用于统计分析。</p>\n'
        f"{banner}\n</header>\n"
        '<noscript><p class="banner warn">请在浏览器中启用 JavaScript 后填写本问卷。'
        "</p></noscript>\n"
        '<form id="survey" class="survey" novalidate>\n'
        f"{questions}"
        '<fieldset class="card q extra">'
        '<legend><span class="qtext">意见建议</span><span class="opt-tag">选填</span></legend>'
        '<p class="hint">欢迎留下您的意见和建议。请勿填写手机号、身份证号等个人信息。</p>'
        '<textarea id="opinion" name="opinion" rows="4" maxlength="2000"'
        ' aria-label="意见建议"></textarea>'
        '<p class="counter" aria-hidden="true"><span>0</span>/2000</p></fieldset>\n'
        '<fieldset class="card q extra respondent">'
        '<legend><span class="qtext">关于您</span><span class="opt-tag">选填</span></legend>'
        '<label class="field"><span>省份</span><select id="r-province" name="province">'
        f'<option value="">请选择</option>{provinces}</select></label>'
        '<label class="field"><span>城市</span><input id="r-city" name="city" type="text"'
        ' maxlength="32" autocomplete="address-level2" placeholder="如：广州"></label>'
        '<label class="field"><span>年龄段</span><select id="r-age" name="age_group">'
        f'<option value="">请选择</option>{ages}</select></label></fieldset>\n'
        '<div class="actions">'
        '<p id="form-error" class="form-error" role="alert" hidden></p>'
        '<p id="retry-note" class="retry-note" role="status" aria-live="polite" hidden></p>'
        '<button id="submit" type="submit" class="primary">提交问卷</button></div>\n'
        "</form>\n"
        '<section id="thanks" class="card thanks" hidden tabindex="-1">'
        '<div class="tick" aria-hidden="true">✓</div>'
        "<h2>感谢您的参与！</h2><p>您的答卷已成功提交。</p>"
        '<p class="small">答卷编号：<code id="thanks-id"></code></p></section>\n'
        "</main>\n"
        f'<script type="application/json" id="survey-data">{json_for_script(data)}</script>\n'
        f'<script src="{e(asset_url("survey.js"))}" defer></script>\n'
        "</body>\n</html>\n"
    )


def _display_page(asset_url: Callable[[str], str], state: CampaignState) -> str:
    defn = state.definition
    data = {
        "campaign": defn.campaign,
        "timezone": defn.timezone,
        "live_url": f"/v1/campaigns/{defn.campaign}/live",
        "pacing_url": f"/v1/campaigns/{defn.campaign}/pacing",
        "phases": [
            {"name": p.name, "label": PHASE_NAMES.get(p.name, p.name), "start": str(p.start),
             "end": str(p.end), "counts": p.counts}
            for p in defn.phases
        ],
        "unit_limit": 20,
    }
    return (
        _head(f"实时看板 · {defn.campaign}", asset_url("display.css"),
              viewport="width=1920, initial-scale=1")
        + '<body class="display">\n<div class="screen">\n'
        '<header class="top">\n<div class="title-block">'
        "<h1>问卷样本采集实时看板</h1>"
        f'<p class="subtitle">调查活动 <b>{e(defn.campaign)}</b>'
        '<span class="sep">·</span><span id="phase">—</span></p></div>\n'
        '<div class="status-block"><div id="clock" class="clock">--:--:--</div>'
        '<div class="conn"><span id="conn-dot" class="dot"></span>'
        '<span id="conn-text">连接中…</span></div>'
        '<div class="as-of">数据更新于 <span id="as-of">—</span></div>'
        '<div class="provisional">实时临时排名，以最终冻结结果为准</div></div>\n</header>\n'
        '<section class="kpis">\n'
        '<div class="kpi valid"><div class="k-label">有效样本</div>'
        '<div id="k-valid" class="k-value">—</div>'
        '<div class="k-sub">总体完成率 <b id="k-progress">—</b></div></div>\n'
        '<div class="kpi rate"><div class="k-main">'
        '<div id="k-rate-label" class="k-label">近一小时新增有效样本</div>'
        '<div id="k-rate" class="k-value">—</div>'
        '<div id="k-rate-sub" class="k-sub">统计中…</div></div>'
        '<div class="spark-wrap"><div id="spark" class="spark" aria-hidden="true"></div>'
        '<div class="spark-cap">近 60 分钟 · 每分钟新增</div></div></div>\n'
        '<div class="kpi rejected"><div class="k-label">无效样本</div>'
        '<div id="k-rejected" class="k-value">—</div>'
        '<div class="k-sub">无效率 <b id="k-reject-rate">—</b></div></div>\n'
        '<div class="kpi target"><div class="k-label">目标样本量</div>'
        '<div id="k-target" class="k-value">—</div>'
        '<div class="k-sub">测试答卷 <b id="k-test">—</b>（不计入）</div></div>\n'
        "</section>\n"
        '<main class="boards">\n'
        '<section class="panel units"><h2>单位排行 <small>前 20 名 · 有效样本</small></h2>'
        '<ol id="units" class="rows"></ol></section>\n'
        '<section class="panel provinces"><h2>各省进度 <small>有效样本 / 目标'
        '<span id="pace-note" class="pace-note"></span></small></h2>'
        '<ol id="provinces" class="rows bars"></ol></section>\n'
        '<section class="panel regions"><h2>七大工作区 <small>完成率</small></h2>'
        '<ol id="regions" class="rows bars big"></ol></section>\n'
        "</main>\n</div>\n"
        f'<script type="application/json" id="display-data">{json_for_script(data)}</script>\n'
        f'<script src="{e(asset_url("display.js"))}" defer></script>\n'
        "</body>\n</html>\n"
    )
