"""The standing status of a sheet, in SQL, once (CONTRACT §6): every read path counts through it.

A *sheet* is a (campaign, submission_id): its first verdict (first_of_id = 1). A conflicting
resend (same id, other content, first_of_id = 0) is evidence, not a sheet. A sheet's *standing
status* is the status of the latest review decision covering it (review_sheets, by order_key),
else that of its first verdict. `core.review.standing` is the same rule in Python (the
property tests check one against the other).

Two forms, for two kinds of reader:
- `sheets_sql`: a FROM fragment with one row per sheet, every column of the submissions table,
  and `status` the standing status, optionally as the store stood at a cut. What reads verdicts
  one by one uses it: the regional queries that need respondent fields, reports, exports (the
  row source in storage/sheets.py, with its cut), reconcile's reference counts.
- `corrections_sql`: per reviewed sheet whose standing status differs from its judged one,
  the signed move between valid and rejected (nv = +1/-1, nr = -nv), with the columns the
  count tables group by. The count tables (unit_counts, link_hour_counts, answer_counts) hold
  the *judged* counts of first verdicts, kept by materialized views on insert; every read from
  them adds these rows (UNION ALL), so the judged counts never need rewriting when a decision
  is taken or reversed, and the correction costs one aggregation over review_sheets (at most a
  few rows per reviewed sheet, read by the campaign prefix of its primary key).

Counts come out as Int64 columns `nv, nr, nt, nc` (valid, rejected, test, conflicts): a
correction is negative, and 18.16 finds no common type for UInt64 and Int64 in a UNION ALL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from storage.sql import SUBMISSION_COLUMNS, literal

# What a reviewed sheet carries in review_sheets, beside its decision (0010).
REVIEW_SHEET_COLUMNS: Final = (
    "campaign", "submission_id", "decision_id", "order_key", "status", "judged_status", "unit",
    "province", "work_region", "link_code", "channel", "received_at", "answers_json",
)
# The per-sheet columns of review_sheets a correction can be grouped or filtered by.
_SHEET_DIMENSIONS: Final = (
    "unit", "province", "work_region", "link_code", "channel", "day", "hour", "answers_json",
)
# Every column of the submissions table a sheet exposes (status: the standing status).
SHEET_COLUMNS: Final = (*SUBMISSION_COLUMNS, "day", "hour")
COUNTS: Final = ("nv", "nr", "nt", "nc")
# The pseudo-status a conflicting resend is listed under when a read includes them.
CONFLICT: Final = "conflict"


def _and(conditions: Sequence[str]) -> str:
    return "".join(f" AND {c}" for c in conditions)


def latest_review_sql(
    campaign: str, conditions: Sequence[str] = (), columns: Sequence[str] = _SHEET_DIMENSIONS
) -> str:
    """Per reviewed sheet of a campaign: `standing` (the latest decision's status), `judged`
    (its first verdict's), and its dimensions prefixed `s_` (an alias named like a column would
    be what WHERE reads). `conditions` are over review_sheets' own columns (unit, province,
    work_region, link_code, channel, day).

    Grouped by two 64-bit hashes of the id rather than the 32-character id itself: a fifth less
    time over 100,000 reviewed sheets, and two sheets would have to collide in 128 bits to
    merge (about 1e-29 at that size)."""
    dims = "".join(f", any({d}) AS s_{d}" for d in columns)  # only those asked for: fewer bytes
    return (
        "SELECT argMax(status, order_key) AS standing,"
        f" any(judged_status) AS judged{dims} FROM review_sheets"
        f" WHERE campaign = {literal(campaign)}{_and(conditions)}"
        " GROUP BY cityHash64(submission_id), sipHash64(submission_id)"
    )


def corrections_sql(
    campaign: str, columns: Sequence[str], conditions: Sequence[str] = ()
) -> str:
    """SELECT <columns>, nv, nr, nt, nc: what review decisions move, one row per sheet whose
    standing status differs from its judged one; to be added to a count table's judged counts.
    `columns` from unit, province, work_region, link_code, channel, day, hour, answers_json."""
    for c in columns:
        if c not in _SHEET_DIMENSIONS:
            raise ValueError(f"a correction has no column {c!r}")
    moved = "toInt64(standing = 'accepted') - toInt64(judged = 'accepted')"
    select = ", ".join(f"s_{c} AS {c}" for c in columns)
    return (
        f"SELECT {select}{', ' if select else ''}{moved} AS nv, -({moved}) AS nr,"
        " toInt64(0) AS nt, toInt64(0) AS nc"
        f" FROM ({latest_review_sql(campaign, conditions, columns)}) WHERE standing != judged"
    )


def sheets_sql(
    campaign: str, *, conflicts: bool = False, cut: int | None = None,
    conditions: Sequence[str] = (),
) -> str:
    """A FROM fragment: one row per sheet of `campaign`, SHEET_COLUMNS, `status` standing.

    With `conflicts`, the conflicting resends follow as rows of their own with status
    'conflict' (listed, never a sheet). Reads the verdicts with FINAL, so a verdict stored
    twice by something bypassing the store still counts once.

    `cut` (epoch seconds of the store's clock, what `inserted_at` holds): only verdicts and
    review rows stored at or before it, i.e. the sheets as they stood then (the export's as-of).
    `conditions` are over the submissions table's own columns (the judged `status` among them),
    applied to the verdicts before the join, so it reads only the sheets in scope.
    """
    c = literal(campaign)
    stored = "" if cut is None else f" AND inserted_at <= {literal(int(cut))}"
    plain = [col for col in SHEET_COLUMNS if col != "status"]
    inner = ", ".join(plain)
    outer = ", ".join(
        "if(review_status = '', judged_status, review_status) AS status" if col == "status"
        else col for col in SHEET_COLUMNS
    )
    sheets = (
        f"SELECT {outer} FROM ("
        f"SELECT {inner}, status AS judged_status FROM submissions FINAL"
        f" WHERE campaign = {c} AND first_of_id = 1{stored}{_and(conditions)}"
        ") AS sheet ANY LEFT JOIN ("
        "SELECT submission_id, argMax(status, order_key) AS review_status FROM review_sheets"
        f" WHERE campaign = {c}{stored} GROUP BY submission_id"
        ") AS review USING (submission_id)"
    )
    if not conflicts:
        return f"({sheets})"
    listed = ", ".join(f"{literal(CONFLICT)} AS status" if col == "status" else col
                       for col in SHEET_COLUMNS)
    return (
        f"({sheets} UNION ALL SELECT {listed} FROM submissions FINAL"
        f" WHERE campaign = {c} AND first_of_id = 0{stored}{_and(conditions)})"
    )


def count_columns(status: str = "status") -> str:
    """nv, nr, nt, nc of one row of `sheets_sql(..., conflicts=True)`, as Int64."""
    return ", ".join(
        f"toInt64({status} = {literal(s)}) AS {n}"
        for s, n in zip(("accepted", "rejected", "test", CONFLICT), COUNTS, strict=True)
    )
