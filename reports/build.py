"""Gathers a report's figures from the store: a handful of aggregate queries, then arithmetic.

Only aggregates leave the database (counts per status, reason, hour, unit, answer value and
respondent group, plus a bounded sample of opinions), so building a report costs the same few
queries at fifty thousand sheets or at ten million.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Sequence
from typing import Any, Final

from core.counting import Count, leaderboard
from core.privacy import mask_personal_numbers
from core.registry import CampaignState
from reports import queries
from reports.eligibility import ELIGIBILITY_THRESHOLD
from reports.estimates import difference
from reports.figures import Figures
from reports.model import (
    Comparison,
    CurvePoint,
    Demographic,
    GroupGap,
    OptionShare,
    RegionIndex,
    ReportData,
)
from reports.queries import Aggregates, Executes, Scope
from reports.stats import proportion
from reports.themes import top_themes
from reports.weighting import Weights, cell_counts, compute_weights
from schemas.campaign import Question, ScaleQuestion

OPINION_SAMPLE: Final = 20
THEME_SAMPLE: Final = 20_000  # opinions the themes are counted over, at most
TOP_CITIES: Final = 15
_LEADING_NUMBER = re.compile(r"(\d+)")


class ReportError(ValueError):
    """A report that cannot be made as asked (unknown province, work region, ...)."""


def store_executor(store: Aggregates) -> Executes:
    """Queries through the Store port's read of aggregates (SqlStore.aggregate)."""
    return store.aggregate


def scoped_state(state: CampaignState, scope: Scope) -> CampaignState:
    """The campaign as seen from the scope: only its provinces, their units and work region,
    so leaderboards rank within the region and targets add up within it."""
    if scope.province is not None:
        if scope.province not in state.provinces:
            raise ReportError(f"campaign {scope.campaign!r} has no province {scope.province!r}")
        provinces = {scope.province: state.provinces[scope.province]}
    elif scope.work_region is not None:
        if scope.work_region not in state.work_regions:
            raise ReportError(
                f"campaign {scope.campaign!r} has no work region {scope.work_region!r}"
            )
        provinces = {
            k: p for k, p in state.provinces.items() if p.work_region == scope.work_region
        }
    else:
        return state
    regions = {p.work_region for p in provinces.values()}
    return dataclasses.replace(
        state,
        provinces=provinces,
        units={k: u for k, u in state.units.items() if u.province in provinces},
        work_regions={k: r for k, r in state.work_regions.items() if k in regions},
    )


def scope_label(state: CampaignState, scope: Scope) -> str:
    if scope.province is not None:
        prov = state.provinces[scope.province]
        return f"{prov.name}（省份 {prov.id}）"
    if scope.work_region is not None:
        region = state.work_regions[scope.work_region]
        return f"{region.name}工作区（{region.id}）"
    if scope.topic is not None:
        return f"{scope.topic.name}（专题 {scope.topic.id}）"
    return "全国（整个活动）"


def topic_scope(state: CampaignState, campaign: str, topic_id: str) -> Scope:
    for topic in state.definition.topics:
        if topic.id == topic_id:
            return Scope(campaign, topic=topic)
    raise ReportError(f"campaign {campaign!r} has no topic {topic_id!r}")


GROUP_TITLES: Final = {
    "scale": "满意度与安全感评价（量表题）",
    "single": "上网习惯与基本情况（单选题）",
    "multi": "遇到的问题与期望（多选题）",
}
MIN_GROUP_N: Final = 30  # sheets a group needs before its index is compared


def weights_for(run: Executes, definition: Any, scope: Scope,
                scope_provinces: frozenset[str] | None = None) -> Weights:
    cells = cell_counts(run(queries.cells_sql(scope, definition.margins)))
    return compute_weights(definition, cells, scope_provinces)


def own_provinces(state: CampaignState, scope: Scope) -> frozenset[str] | None:
    """A province or work-region report's own provinces (None: nation and topics, all)."""
    if scope.kind in ("province", "work_region"):
        return frozenset(scoped_state(state, scope).provinces)
    return None


def basis_lines(state: CampaignState, scope: Scope) -> list[str]:
    """What the figures rest on, stated in the report."""
    lines = [
        queries.VALID_BASIS,
        f"判定规则版本：见方法附录；问卷版本 {state.definition.questionnaire.version}。",
    ]
    if scope.topic is not None:
        cond = "；".join(f"{k} ∈ {{{', '.join(v)}}}" for k, v in scope.topic.where.items())
        lines.append(f"专题筛选条件：{cond}。")
    return lines


def build_report(
    run: Executes,
    state: CampaignState,
    scope: Scope,
    *,
    previous: CampaignState | None = None,
    nation_memo: dict[Any, Any] | None = None,
    now: dt.datetime | None = None,
    opinion_sample: int = OPINION_SAMPLE,
    theme_sample: int = THEME_SAMPLE,
) -> ReportData:
    local = scoped_state(state, scope)
    if scope.topic is not None:
        scope = topic_scope(state, scope.campaign, scope.topic.id)
    data = ReportData(
        scope=scope,
        title=f"网民网络安全感满意度调查 统计报告 · 活动 {scope.campaign}",
        scope_label=scope_label(state, scope),
        generated_at=now or dt.datetime.now(dt.UTC),
        kind=scope.kind,
        basis=basis_lines(state, scope),
    )
    for status, n in run(queries.status_counts_sql(scope)):
        if status == "accepted":
            data.valid = int(n)
        elif status == "rejected":
            data.rejected = int(n)
        elif status == "test":
            data.test = int(n)
    data.eligible = data.valid > ELIGIBILITY_THRESHOLD
    data.reasons = sorted(
        ((str(r), int(n)) for r, n in run(queries.reason_counts_sql(scope))),
        key=lambda rn: (-rn[1], rn[0]),
    )
    data.curve = [
        CurvePoint(str(d), int(h), int(v), int(r), int(t))
        for d, h, v, r, t in run(queries.curve_sql(scope))
    ]

    counts = {
        str(u): Count(valid=int(v), rejected=int(r), test=int(t))
        for u, v, r, t in run(queries.unit_counts_sql(scope))
    }
    data.units = leaderboard(local, counts, "unit")
    data.provinces = leaderboard(local, counts, "province")
    data.work_regions = leaderboard(local, counts, "work_region")

    _weighted(run, state, scope, data, previous, {} if nation_memo is None else nation_memo)
    _quality(run, scope, data)
    _demographics(run, state, scope, data)

    data.opinions_total = int(run(queries.opinion_count_sql(scope))[0][0])
    sample = [mask_personal_numbers(str(row[0])) for row in run(
        queries.opinions_sql(scope, max(opinion_sample, theme_sample)))]
    data.opinion_sample = sample[:opinion_sample]
    data.themes = top_themes(sample[:theme_sample])
    data.themes_from = min(len(sample), theme_sample)
    return data


def build_report_from_store(store: Aggregates, state: CampaignState, scope: Scope,
                            **options: Any) -> ReportData:
    return build_report(store_executor(store), state, scope, **options)


# -- weighted figures ---------------------------------------------------------------------------

def _questions_of(state: CampaignState, scope: Scope) -> list[Question]:
    questions = list(state.definition.questionnaire.questions)
    if scope.topic is not None and scope.topic.questions:
        wanted = set(scope.topic.questions)
        questions = [q for q in questions if q.id in wanted]
    return questions


def _weighted(run: Executes, state: CampaignState, scope: Scope, data: ReportData,
              previous: CampaignState | None, nation_memo: dict[Any, Any]) -> None:
    definition = state.definition
    data.weights = weights_for(run, definition, scope, own_provinces(state, scope))
    figures = Figures(run, definition, scope, data.weights)
    questions = _questions_of(state, scope)
    for q in questions:
        result = figures.question(q)
        if result is not None:
            data.questions.append(dataclasses.replace(result, group=GROUP_TITLES.get(q.type, "")))
    scales = [q for q in questions if isinstance(q, ScaleQuestion)]
    overall = figures.index(scales).get("")
    if overall is not None:
        data.index, data.index_unweighted, _ = overall
        data.overall_index = data.index_unweighted.value
    if scope.province is not None:
        level = "unit"
    elif scope.work_region is not None:
        level = "province"
    else:
        level = "work_region"
    levels = [level] + (["province"] if level == "work_region" else [])
    for lv in levels:
        for key, (w, u, answers) in sorted(figures.index(scales, lv).items()):
            data.satisfaction.append(RegionIndex(lv, key, _entity_name(state, lv, key),
                                                 u.value, answers, w))
    _gaps(figures, scales, state, data)
    if scope.kind != "national" and data.index is not None:
        memo_key = (scope.campaign, tuple(q.id for q in scales))
        if memo_key not in nation_memo:
            nation = Figures(run, definition, scope.nation(),
                             weights_for(run, definition, scope.nation()))
            nation_memo[memo_key] = nation.index(scales).get("")
        found = nation_memo[memo_key]
        if found is not None:
            data.nation = Comparison("全国 nation", found[0], difference(data.index, found[0]))
    if previous is not None:
        _year_over_year(run, previous, scope, data)


def _gaps(figures: Figures, scales: Sequence[Question], state: CampaignState,
          data: ReportData) -> None:
    dims = [("age_group", "年龄段"), ("respondent_province", "受访者所在省份")]
    if data.kind == "national":
        dims.insert(0, ("work_region", "工作区"))
    for by, title in dims:
        found = {k: v for k, v in figures.index(scales, by).items()
                 if v[0].n >= MIN_GROUP_N and k}
        if len(found) < 2:
            continue
        hi = max(found, key=lambda k: found[k][0].value)
        lo = min(found, key=lambda k: found[k][0].value)
        name = (lambda k: _entity_name(state, "province", k)) if "province" in by else (
            (lambda k: _entity_name(state, "work_region", k)) if by == "work_region" else str)
        data.gaps.append(GroupGap(title, name(hi), found[hi][0], name(lo), found[lo][0],
                                  difference(found[hi][0], found[lo][0])))
    data.gaps.sort(key=lambda g: -g.gap.value)


def _year_over_year(run: Executes, previous: CampaignState, scope: Scope,
                    data: ReportData) -> None:
    """Where question ids (and types) match, the previous campaign's weighted figures over the
    same scope, weighted with its own provinces and margins."""
    prev_def = previous.definition
    data.previous_campaign = prev_def.campaign
    prev_scope = dataclasses.replace(scope, campaign=prev_def.campaign)
    try:
        own = own_provinces(previous, prev_scope)
    except ReportError:
        return
    figures = Figures(run, prev_def, prev_scope, weights_for(run, prev_def, prev_scope, own))
    by_id = {q.id: q for q in prev_def.questionnaire.questions}
    scales = []
    for i, result in enumerate(data.questions):
        q = by_id.get(result.id)
        if q is None or q.type != result.type:
            continue
        if isinstance(q, ScaleQuestion):
            scales.append(q)
        before = figures.question(q)
        if before is None:
            continue
        old = {o.option: o.weighted for o in before.options if o.weighted is not None}
        options = []
        for o in result.options:
            was = old.get(o.option)
            change = (difference(o.weighted, was)
                      if o.weighted is not None and was is not None and was.n > 0 else None)
            options.append(dataclasses.replace(o, previous=was, change=change))
        mean_change = None
        if result.weighted_mean is not None and before.weighted_mean is not None:
            mean_change = difference(result.weighted_mean, before.weighted_mean)
        data.questions[i] = dataclasses.replace(
            result, options=options, previous_mean=before.weighted_mean, mean_change=mean_change)
    found = figures.index(scales).get("")
    if found is not None and data.index is not None:
        data.previous = Comparison(f"上届 {prev_def.campaign}", found[0],
                                   difference(data.index, found[0]))


def _quality(run: Executes, scope: Scope, data: ReportData) -> None:
    rows = run(queries.duration_sql(scope))
    if rows and data.valid:
        median, _ = rows[0]
        data.duration_median = float(median)


def _entity_name(state: CampaignState, level: str, key: str) -> str:
    if level == "unit":
        unit = state.units.get(key)
        return unit.name if unit else key
    if level == "province":
        prov = state.provinces.get(key)
        return prov.name if prov else key
    region = state.work_regions.get(key)
    return region.name if region else key


# -- respondents --------------------------------------------------------------------------------

def _age_order(label: str) -> tuple[int, int, str]:
    if not label:
        return (2, 0, "")
    if label.startswith("under"):
        return (0, -1, label)
    m = _LEADING_NUMBER.search(label)
    return (0, int(m.group(1)), label) if m else (1, 0, label)


def _demographics(run: Executes, state: CampaignState, scope: Scope, data: ReportData) -> None:
    n = data.valid
    ages = {str(g): int(c) for g, c in run(queries.demographic_sql(scope, "age_group"))}
    data.demographics.append(Demographic("年龄段 (age group)", [
        OptionShare(g or "未填写", proportion(c, n)) for g, c in sorted(
            ages.items(), key=lambda gc: _age_order(gc[0]))
    ]))
    provs = {str(g): int(c) for g, c in run(queries.demographic_sql(scope, "respondent_province"))}
    data.demographics.append(Demographic("受访者所在省份 (respondent province)", [
        OptionShare(_province_label(state, g), proportion(c, n))
        for g, c in sorted(provs.items(), key=lambda gc: (-gc[1], gc[0]))
    ]))
    cities = sorted(
        ((str(g), int(c)) for g, c in run(queries.demographic_sql(scope, "respondent_city"))),
        key=lambda gc: (-gc[1], gc[0]),
    )
    shown = cities[:TOP_CITIES]
    data.demographics.append(Demographic(
        f"受访者所在城市 前{TOP_CITIES} (respondent city, top {TOP_CITIES})",
        [OptionShare(g or "未填写", proportion(c, n)) for g, c in shown],
        others=sum(c for _, c in cities[TOP_CITIES:]),
    ))


def _province_label(state: CampaignState, province_id: str) -> str:
    if not province_id:
        return "未填写"
    prov = state.provinces.get(province_id)
    return f"{prov.name}" if prov else province_id
