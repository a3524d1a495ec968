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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from storage.sql import literal
from storage.standing import sheets_sql


@dataclass(frozen=True)
class Scope:
    """What a report covers: a whole campaign, or one province or work region of it (the
    region a sheet is credited to through its link, as the leaderboards count it)."""

    campaign: str
    province: str | None = None
    work_region: str | None = None

    def __post_init__(self) -> None:
        if self.province is not None and self.work_region is not None:
            raise ValueError("a report covers a province or a work region, not both")


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
    parts.extend(more)
    return " WHERE " + " AND ".join(parts)


VALID = "status = 'accepted'"
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
