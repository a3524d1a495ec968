"""The SQL of the export's row source: one row per answer sheet, under its standing status.

The sheets and their standing status are storage/standing.py's `sheets_sql`, the one rule every
count follows (a sheet is a submission id's first verdict; its standing status that of the
latest review decision covering it, else its verdict's), here with the export's cut and scope.

The cut: only verdicts and review rows stored at or before `cut` (epoch seconds of the store's
clock, column `inserted_at`) are read, so an export taken while sheets keep coming in is the store
as it stood at one instant, whatever the order the rows are streamed in. The filters are the
/counts filters, applied by `storage.queries` (the same whitelist and the same `literal`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from core.ports import RegionFilter
from storage import standing
from storage.queries import BASE_FILTERS, region_conditions

StatusFilter = Literal["accepted", "all"]

# What the row source yields, in this order (received_at as epoch seconds, reasons as an array).
SHEET_COLUMNS: Final = (
    "submission_id", "received_at", "status", "reasons", "unit", "province", "work_region",
    "channel", "link_code", "questionnaire_version", "duration_seconds", "respondent_province",
    "respondent_city", "age_group", "answers_json", "opinion",
)

_COLUMNS: Final = ", ".join(
    "toUnixTimestamp(received_at) AS received_at" if c == "received_at" else c
    for c in SHEET_COLUMNS
)


def clock_sql() -> str:
    """The store's clock, in the unit `inserted_at` keeps (whole seconds)."""
    return "SELECT toUnixTimestamp(now())"


def sheets_sql(campaign: str, filters: RegionFilter, status: StatusFilter, cut: int) -> str:
    """Every sheet of `campaign` in scope stored by `cut`, under its standing status, in
    SHEET_COLUMNS order (the caller names the result's columns by position)."""
    conditions = region_conditions(filters, BASE_FILTERS)
    if status == "accepted":
        # Test-phase sheets never count and no decision covers them: only these two can stand
        # accepted after review (a condition on the judged status, read before the join).
        conditions.append("status IN ('accepted', 'rejected')")
    elif status != "all":
        raise ValueError(f"status must be 'accepted' or 'all', not {status!r}")
    source = standing.sheets_sql(campaign, cut=cut, conditions=conditions)
    where = " WHERE status = 'accepted'" if status == "accepted" else ""
    return f"SELECT {_COLUMNS} FROM {source} AS s{where}"


@dataclass(frozen=True)
class Projection:
    """Columns the engine computes from the row source's, instead of SHEET_COLUMNS: `helpers`
    are (alias, expression) pairs computed once per row for the columns to share, `columns` the
    (name, expression) pairs yielded, in order. Expressions see SHEET_COLUMNS by name (`status`
    is the standing status, see `sheets_sql`) and the helpers by alias."""

    helpers: tuple[tuple[str, str], ...]
    columns: tuple[tuple[str, str], ...]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]


def projected_sql(
    campaign: str, filters: RegionFilter, status: StatusFilter, cut: int, projection: Projection
) -> str:
    """`projection` over the rows of `sheets_sql` (the same sheets, the same cut). Two levels,
    so that a helper (one answer pulled out of answers_json) is computed once however many
    columns use it."""
    helpers = "".join(f", {expr} AS {alias}" for alias, expr in projection.helpers)
    columns = ", ".join(f"{expr} AS _c{i}" for i, (_, expr) in enumerate(projection.columns))
    inner = sheets_sql(campaign, filters, status, cut)
    return f"SELECT {columns} FROM (SELECT *{helpers} FROM ({inner}) AS s0) AS s1"


def counts_sql(campaign: str, filters: RegionFilter, status: StatusFilter, cut: int) -> str:
    """How many rows `sheets_sql` yields, per (unit, standing status): an export's row count and
    its per-unit figures, known before it starts."""
    return (
        "SELECT unit, status, count()"
        f" FROM ({sheets_sql(campaign, filters, status, cut)}) AS c GROUP BY unit, status"
    )
