"""Gathers a report's figures from the store: a handful of aggregate queries, then arithmetic.

Only aggregates leave the database (counts per status, reason, hour, unit, answer value and
respondent group, plus a bounded sample of opinions), so building a report costs the same few
queries at fifty thousand sheets or at ten million.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from core.counting import Count, leaderboard
from core.privacy import mask_personal_numbers
from core.registry import CampaignState
from reports import queries
from reports.eligibility import ELIGIBILITY_THRESHOLD
from reports.model import (
    CurvePoint,
    Demographic,
    OptionShare,
    QuestionResult,
    RegionIndex,
    ReportData,
)
from reports.queries import Executes, Scope
from reports.stats import proportion, satisfaction_index
from reports.themes import top_themes
from schemas.campaign import MultiQuestion, ScaleQuestion, SingleQuestion
from storage.base import SqlStore

OPINION_SAMPLE: Final = 20
THEME_SAMPLE: Final = 20_000  # opinions the themes are counted over, at most
TOP_CITIES: Final = 15
_MISSING: Final = object()
_LEADING_NUMBER = re.compile(r"(\d+)")


class ReportError(ValueError):
    """A report that cannot be made as asked (unknown province, work region, ...)."""


def store_executor(store: SqlStore) -> Executes:
    """Queries through the store's own adapter and lock (the same path every store query takes;
    SqlStore has no public ad hoc query, and reports are its only aggregate reader)."""

    def run(query: str) -> Sequence[Sequence[Any]]:
        with store._lock:
            return store._execute(query)

    return run


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
    return "全部地区（整个活动）"


def build_report(
    run: Executes,
    state: CampaignState,
    scope: Scope,
    *,
    now: dt.datetime | None = None,
    opinion_sample: int = OPINION_SAMPLE,
    theme_sample: int = THEME_SAMPLE,
) -> ReportData:
    local = scoped_state(state, scope)
    data = ReportData(
        scope=scope,
        title=f"网民网络安全感满意度调查 统计报告 · 活动 {scope.campaign}",
        scope_label=scope_label(state, scope),
        generated_at=now or dt.datetime.now(dt.UTC),
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

    _answers(run, local, scope, data)
    _demographics(run, state, scope, data)

    data.opinions_total = int(run(queries.opinion_count_sql(scope))[0][0])
    sample = [mask_personal_numbers(str(row[0])) for row in run(
        queries.opinions_sql(scope, max(opinion_sample, theme_sample)))]
    data.opinion_sample = sample[:opinion_sample]
    data.themes = top_themes(sample[:theme_sample])
    data.themes_from = min(len(sample), theme_sample)
    return data


def build_report_from_store(store: SqlStore, state: CampaignState, scope: Scope,
                            **options: Any) -> ReportData:
    return build_report(store_executor(store), state, scope, **options)


# -- answers ------------------------------------------------------------------------------------

def _parse(raw: Any) -> Any:
    text = str(raw).strip()
    if not text:
        return _MISSING
    try:
        value = json.loads(text)
    except ValueError:
        return _MISSING
    return _MISSING if value is None else value


def _answers(run: Executes, state: CampaignState, scope: Scope, data: ReportData) -> None:
    questionnaire = state.definition.questionnaire
    # Per scale item: {(work_region, province, unit): {value: count}}.
    by_unit: dict[str, dict[tuple[str, str, str], Counter[int]]] = {}
    for q in questionnaire.questions:
        if isinstance(q, ScaleQuestion):
            cells: dict[tuple[str, str, str], Counter[int]] = defaultdict(Counter)
            skipped = 0
            for wr, prov, unit, raw, n in run(queries.scale_values_by_unit_sql(scope, q.id)):
                value = _parse(raw)
                if isinstance(value, int) and not isinstance(value, bool):
                    cells[(str(wr), str(prov), str(unit))][value] += int(n)
                else:
                    skipped += int(n)
            by_unit[q.id] = cells
            total: Counter[int] = Counter()
            for c in cells.values():
                total.update(c)
            data.questions.append(_scale_result(q, total, skipped))
        elif isinstance(q, SingleQuestion | MultiQuestion):
            rows = run(queries.answer_values_sql(scope, q.id))
            values = [(_parse(raw), int(n)) for raw, n in rows]
            data.questions.append(_choice_result(q, values))
    _satisfaction(questionnaire.questions, by_unit, state, scope, data)


def _scale_result(q: ScaleQuestion, total: Counter[int], skipped: int) -> QuestionResult:
    answered = sum(total.values())
    values = sorted(set(range(q.min, q.max + 1)) | set(total))
    mean = sum(v * c for v, c in total.items()) / answered if answered else None
    return QuestionResult(
        id=q.id, label=q.label or q.id, type="scale", answered=answered, skipped=skipped,
        options=[OptionShare(str(v), proportion(total[v], answered)) for v in values], mean=mean,
    )


def _choice_result(
    q: SingleQuestion | MultiQuestion, values: Iterable[tuple[Any, int]]
) -> QuestionResult:
    ticks: Counter[str] = Counter()
    answered = skipped = 0
    for value, n in values:
        chosen = value if isinstance(value, list) else [value]
        chosen = [str(v) for v in chosen if v is not _MISSING and v is not None]
        if not chosen:
            skipped += n
            continue
        answered += n
        for option in set(chosen):
            ticks[option] += n
    options = list(q.options) + sorted(set(ticks) - set(q.options))
    return QuestionResult(
        id=q.id, label=q.label or q.id, type=q.type, answered=answered, skipped=skipped,
        options=[OptionShare(o, proportion(ticks[o], answered)) for o in options],
    )


def _satisfaction(
    questions: Sequence[Any],
    by_unit: Mapping[str, Mapping[tuple[str, str, str], Counter[int]]],
    state: CampaignState,
    scope: Scope,
    data: ReportData,
) -> None:
    scales = {q.id: q for q in questions if isinstance(q, ScaleQuestion)}
    if not scales:
        return
    # The region level one step below the scope.
    if scope.province is not None:
        levels = [("unit", 2)]
    elif scope.work_region is not None:
        levels = [("province", 1)]
    else:
        levels = [("work_region", 0), ("province", 1)]
    overall = {
        qid: (scales[qid].min, scales[qid].max, _sum(cells.values()))
        for qid, cells in by_unit.items()
    }
    found = satisfaction_index(overall)
    data.overall_index = found[0] if found else None
    for level, position in levels:
        keys = sorted({key[position] for cells in by_unit.values() for key in cells})
        for key in keys:
            items = {
                qid: (scales[qid].min, scales[qid].max,
                      _sum(c for k, c in cells.items() if k[position] == key))
                for qid, cells in by_unit.items()
            }
            result = satisfaction_index(items)
            if result is not None:
                data.satisfaction.append(RegionIndex(
                    level, key, _entity_name(state, level, key), result[0], result[1]))


def _sum(counters: Iterable[Counter[int]]) -> Counter[int]:
    total: Counter[int] = Counter()
    for c in counters:
        total.update(c)
    return total


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
