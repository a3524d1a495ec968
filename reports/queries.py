"""The SQL a report runs, for ClickHouse 18.16 and chDB alike; every value through `literal`.

Reads sheets, not verdicts: `storage.standing.sheets_sql`, one row per sheet under its standing
status (first verdict, or the latest review decision covering it; CONTRACT §6), so a report's
figures are the leaderboard's and /counts' figures. That fragment reads the verdicts with FINAL,
so a verdict stored twice (a part not merged yet after something bypassed the store) is read
once. Answers are picked out of answers_json with
visitParamExtractRaw: JSONExtract does not exist on 18.16, and the typed visitParam functions
do not read the `"q1": 4` spacing the judge writes, so the raw JSON text of each answer is
grouped on in SQL and parsed here, over a few hundred distinct values at most.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from schemas.campaign import Margin, Question, ScaleQuestion, Topic
from storage.sql import literal
from storage.standing import sheets_sql


@dataclass(frozen=True)
class Scope:
    """What a report covers: a whole campaign, or one province or work region of it (the
    region a sheet is credited to through its link, as the leaderboards count it)."""

    campaign: str
    province: str | None = None
    work_region: str | None = None
    topic: Topic | None = None

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.province, self.work_region, self.topic)) > 1:
            raise ValueError("a report covers a province, a work region or a topic: one of them")

    @property
    def kind(self) -> str:
        if self.province is not None:
            return "province"
        if self.work_region is not None:
            return "work_region"
        if self.topic is not None:
            return "topic"
        return "national"

    def nation(self) -> Scope:
        return Scope(self.campaign)


class Aggregates(Protocol):
    """The Store port's read of aggregates (SqlStore.aggregate): only SELECTs, rows of plain
    values. Reports read through nothing else."""

    def aggregate(self, query: str) -> Sequence[Sequence[Any]]: ...


class Executes(Protocol):
    def __call__(self, query: str) -> Sequence[Sequence[Any]]: ...


def _from(scope: Scope) -> str:
    """Every sheet of the scope's campaign, once, under its standing status."""
    return sheets_sql(scope.campaign)


def where(scope: Scope, *more: str) -> str:
    parts = [f"campaign = {literal(scope.campaign)}"]
    if scope.province is not None:
        parts.append(f"province = {literal(scope.province)}")
    if scope.work_region is not None:
        parts.append(f"work_region = {literal(scope.work_region)}")
    if scope.topic is not None:
        parts.extend(topic_conditions(scope.topic))
    parts.extend(more)
    return " WHERE " + " AND ".join(parts)


RESPONDENT_COLUMNS = {
    "respondent.age_group": "age_group",
    "respondent.province": "respondent_province",
    "respondent.city": "respondent_city",
}


def answer_raw(question_id: str) -> str:
    """The raw JSON text of one answer ('' where unanswered): `4`, `"b"`, `["a", "c"]` (the
    judge writes `"q1": 4`, and the raw value keeps the space after the colon: cut here)."""
    raw = f"visitParamExtractRaw(answers_json, {literal(question_id)})"
    return f"replaceRegexpOne({raw}, '^ +', '')"


def topic_conditions(topic: Topic) -> list[str]:
    """One condition per `where` entry: a respondent field in the listed values, or an answer
    that is (single, scale) or contains (multi) one of them."""
    out = []
    for key, values in sorted(topic.where.items()):
        if key in RESPONDENT_COLUMNS:
            listed = ", ".join(literal(v) for v in values)
            out.append(f"{RESPONDENT_COLUMNS[key]} IN ({listed})")
            continue
        raw = answer_raw(key)
        texts = [json.dumps(v, ensure_ascii=False) for v in values]
        # A scale answer is stored as a number; a choice as a JSON string, in a list when multi.
        numbers = [literal(v) for v in values if v.lstrip("-").isdigit()]
        exact = [literal(t) for t in texts] + numbers
        inside = [f"position({raw}, {literal(t)}) > 0" for t in texts]
        out.append(f"({raw} IN ({', '.join(exact)}) OR (substring({raw}, 1, 1) = '[' AND ("
                   + " OR ".join(inside) + ")))")
    return out


VALID = "status = 'accepted'"
# What VALID means, as the report states it: `status` is the standing status (storage/standing.py:
# the first verdict's, or the latest review decision's); change both together.
VALID_BASIS = ("样本口径：每份答卷计一次（同一答卷编号的冲突重复提交不计），"
               "按其现行状态——判定结果，或覆盖它的最新复核决定；"
               "本报告只用现行状态为“有效”（accepted）的答卷。")
REJECTED = "status = 'rejected'"
HAS_UNIT = "unit != ''"
HAS_OPINION = "opinion != ''"


def status_counts_sql(scope: Scope) -> str:
    return f"SELECT status, count() FROM {_from(scope)}{where(scope)} GROUP BY status"


def reason_counts_sql(scope: Scope) -> str:
    return (
        f"SELECT reason, count() FROM {_from(scope)} ARRAY JOIN reasons AS reason"
        f"{where(scope, REJECTED)} GROUP BY reason"
    )


def curve_sql(scope: Scope) -> str:
    return (
        "SELECT toString(day) AS d, hour, countIf(status = 'accepted'),"
        " countIf(status = 'rejected'), countIf(status = 'test')"
        f" FROM {_from(scope)}{where(scope)} GROUP BY d, hour ORDER BY d, hour"
    )


def unit_counts_sql(scope: Scope) -> str:
    return (
        "SELECT unit, countIf(status = 'accepted'), countIf(status = 'rejected'),"
        f" countIf(status = 'test') FROM {_from(scope)}{where(scope, HAS_UNIT)} GROUP BY unit"
    )


def answer_values_sql(scope: Scope, question_id: str) -> str:
    """Valid samples per raw answer text of one question ('' where it was not answered)."""
    return (
        f"SELECT visitParamExtractRaw(answers_json, {literal(question_id)}) AS v, count()"
        f" FROM {_from(scope)}{where(scope, VALID)} GROUP BY v"
    )


def scale_values_by_unit_sql(scope: Scope, question_id: str) -> str:
    """As answer_values_sql, per credited unit (with its province and work region), which
    the satisfaction index of every region level is summed from."""
    return (
        "SELECT work_region, province, unit,"
        f" visitParamExtractRaw(answers_json, {literal(question_id)}) AS v, count()"
        f" FROM {_from(scope)}{where(scope, VALID)} GROUP BY work_region, province, unit, v"
    )


def demographic_sql(scope: Scope, column: str) -> str:
    if column not in ("age_group", "respondent_province", "respondent_city"):
        raise ValueError(f"not a respondent column: {column!r}")
    return f"SELECT {column} AS g, count() FROM {_from(scope)}{where(scope, VALID)} GROUP BY g"


def opinion_count_sql(scope: Scope) -> str:
    return f"SELECT count() FROM {_from(scope)}{where(scope, VALID, HAS_OPINION)}"


def opinions_sql(scope: Scope, limit: int) -> str:
    """A fixed pseudo-random sample: ordered by a hash of the id, so the same store gives the
    same sample every time and no region or hour is favoured."""
    return (
        f"SELECT opinion FROM {_from(scope)}{where(scope, VALID, HAS_OPINION)}"
        f" ORDER BY cityHash64(submission_id), submission_id LIMIT {literal(int(limit))}"
    )


# -- weighting cells ---------------------------------------------------------------------------

def cell_columns(margins: Sequence[Margin]) -> list[str]:
    """The weighting cell of a sheet: its respondent's province, then each margin's raw value."""
    cols = ["respondent_province"]
    for m in margins:
        cols.append(RESPONDENT_COLUMNS[m.field] if m.field else answer_raw(m.question or ""))
    return cols


def cells_sql(scope: Scope, margins: Sequence[Margin]) -> str:
    cols = ", ".join(f"{c} AS c{i}" for i, c in enumerate(cell_columns(margins)))
    keys = ", ".join(f"c{i}" for i in range(len(margins) + 1))
    return f"SELECT {cols}, count() FROM {_from(scope)}{where(scope, VALID)} GROUP BY {keys}"


def answer_cells_sql(scope: Scope, margins: Sequence[Margin], question_id: str) -> str:
    """Valid sheets per weighting cell and raw answer text of one question."""
    cols = ", ".join(f"{c} AS c{i}" for i, c in enumerate(cell_columns(margins)))
    keys = ", ".join(f"c{i}" for i in range(len(margins) + 1))
    return (f"SELECT {cols}, {answer_raw(question_id)} AS v, count()"
            f" FROM {_from(scope)}{where(scope, VALID)} GROUP BY {keys}, v")


GROUPINGS = {"work_region": "work_region", "province": "province", "unit": "unit",
             "age_group": "age_group", "respondent_province": "respondent_province"}


def index_cells_sql(scope: Scope, margins: Sequence[Margin], scales: Sequence[Question],
                    by: str | None = None) -> str:
    """Per weighting cell (and `by` group): Σy, Σx, Σy², Σx², Σxy and the count, where y is a
    sheet's scale answers rescaled to 0–1 and summed, x the number of scale items it answered
    (the satisfaction index is Σ w·y / Σ w·x)."""
    ys, xs = [], []
    for q in scales:
        assert isinstance(q, ScaleQuestion)
        raw = answer_raw(q.id)
        span = q.max - q.min
        point = f"(toFloat64OrZero({raw}) - {q.min}) / {span}" if span > 0 else "1"
        ys.append(f"if({raw} != '', {point}, 0)")
        xs.append(f"if({raw} != '', 1, 0)")
    y = " + ".join(ys) or "0"
    x = " + ".join(xs) or "0"
    group = [GROUPINGS[by]] if by else []
    cols = [*(f"{g} AS g" for g in group),
            *(f"{c} AS c{i}" for i, c in enumerate(cell_columns(margins)))]
    keys = [*(["g"] if group else []), *(f"c{i}" for i in range(len(margins) + 1))]
    return (f"SELECT {', '.join(cols)}, sum(y), sum(x), sum(y * y), sum(x * x), sum(x * y),"
            f" count() FROM (SELECT *, {y} AS y, {x} AS x FROM {_from(scope)}{where(scope, VALID)})"
            f" GROUP BY {', '.join(keys)}")


def valid_count_sql(scope: Scope) -> str:
    return f"SELECT count() FROM {_from(scope)}{where(scope, VALID)}"


def duration_sql(scope: Scope) -> str:
    """Median and mean completion time of the valid sheets (response quality)."""
    return (f"SELECT quantile(0.5)(duration_seconds), avg(duration_seconds)"
            f" FROM {_from(scope)}{where(scope, VALID)}")
