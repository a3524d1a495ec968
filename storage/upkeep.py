"""Keeping the count tables true: compare with the verdicts, top up, rebuild, hash, erase.

The SQL is storage/count_tables.py's; this module runs it through a store's `execute`, and
waits for the mutations (ALTER ... DELETE) it starts, which a server runs in the background.
Rebuilds and erasure expect no writer meanwhile (the embedded store belongs to one process;
stop the distributed workers first): a view's insert racing a refill could count twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from core.progress import SILENT, Progress
from storage import count_tables
from storage.count_tables import COUNT_TABLES, CountTable
from storage.sql import identifier, in_list, literal

Execute = Callable[[str], Sequence[Sequence[Any]]]
MUTATION_TIMEOUT_S = 300.0
ERASE_CHUNK = 20_000  # ids per DELETE mutation
# Tables holding per-sheet rows, erased with the sheet (the count tables are rebuilt instead).
SHEET_TABLES = ("submissions", "review_sheets", "review_overrides")


@dataclass(frozen=True)
class CountDifference:
    """One key of one count table whose stored figures differ from the verdicts'."""

    table: str
    key: dict[str, str]
    stored: dict[str, int]
    expected: dict[str, int]


def differences(
    execute: Execute, campaign: str | None = None, tables: Sequence[CountTable] = COUNT_TABLES
) -> list[CountDifference]:
    out: list[CountDifference] = []
    for table in tables:
        scope = count_tables.scope_sql(campaign)
        width = len(table.keys)
        for row in execute(table.differences_sql(scope)):
            values = row[width:]
            out.append(CountDifference(
                table=table.name,
                key={k: str(v) for k, v in zip(table.keys, row[:width], strict=True)},
                stored={v: int(values[2 * i]) for i, v in enumerate(table.values)},
                expected={v: int(values[2 * i + 1]) for i, v in enumerate(table.values)},
            ))
    return out


def top_up(execute: Execute) -> None:
    """Count what is stored but was never counted; never lowers a count (start-up repair).
    The two sheet count tables only: their reference is a GROUP BY over the verdicts (seconds
    at 10 M); answer_counts' splits every answer with a regular expression (a minute at 10 M),
    too slow for every start, and is left to `reconcile --repair`."""
    for table in (count_tables.UNIT_COUNTS, count_tables.LINK_HOUR_COUNTS):
        execute(table.top_up_sql())


def rebuild(
    execute: Execute, database: str, campaign: str | None = None,
    days: Sequence[str] | None = None, progress: Progress = SILENT,
) -> None:
    """Every count table recomputed from the verdicts: whole (TRUNCATE) or over a campaign
    and optionally some days (DELETE mutation, then refill of the same scope)."""
    for table in COUNT_TABLES:
        scope = count_tables.scope_sql(campaign, list(days or []), table)
        if not scope:
            execute(f"TRUNCATE TABLE {identifier(table.name)}")
        else:
            execute(f"ALTER TABLE {identifier(table.name)} DELETE WHERE {scope}")
            wait_for_mutations(execute, database, table.name)
        execute(table.insert_sql(scope))
        progress.advance()


def hashes(execute: Execute, campaign: str) -> dict[str, tuple[int, int]]:
    """Per count table (and review_sheets), (hash of its content, rows) for one campaign."""
    out: dict[str, tuple[int, int]] = {}
    for table in COUNT_TABLES:
        rows = execute(table.hash_sql(campaign))
        out[table.name] = (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)
    rows = execute(
        "SELECT sum(cityHash64(submission_id, decision_id, status, judged_status)), count() FROM"
        " (SELECT submission_id, decision_id, any(status) AS status,"
        " any(judged_status) AS judged_status FROM review_sheets"
        f" WHERE campaign = {literal(campaign)} GROUP BY submission_id, decision_id)"
    )
    out["review_sheets"] = (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)
    return out


def erase(execute: Execute, database: str, campaign: str, where: str, *,
          dry_run: bool = False, progress: Progress = SILENT) -> int:
    """Delete the sheets of `campaign` matching `where` (over the submissions table) from every
    table holding per-sheet rows, then rebuild the count tables over the days they were in, so
    the counts move with them and reconcile stays clean. Returns how many verdicts matched.
    Finding samples are left to the caller (the findings table is storage/findings.py's)."""
    rows = execute(f"SELECT count() FROM submissions WHERE {where}")
    matched = int(rows[0][0]) if rows else 0
    if not matched or dry_run:
        return matched
    ids = [str(r[0]) for r in execute(
        f"SELECT DISTINCT submission_id FROM submissions WHERE {where}")]
    days = [str(r[0]) for r in execute(
        f"SELECT DISTINCT toString(day) FROM submissions WHERE {where}")]
    c = literal(campaign)
    starts = range(0, len(ids), ERASE_CHUNK)
    steps = (len(starts) + 1) * len(SHEET_TABLES) + len(COUNT_TABLES)
    progress.stage("erase", steps, "steps")
    for start in starts:
        chunk = in_list(ids[start : start + ERASE_CHUNK])
        for table in SHEET_TABLES:
            execute(f"ALTER TABLE {table} DELETE WHERE campaign = {c}"
                    f" AND submission_id IN {chunk}")
            progress.advance()
    for table in SHEET_TABLES:
        wait_for_mutations(execute, database, table)
        progress.advance()
    rebuild(execute, database, campaign, days, progress)
    return matched


def wait_for_mutations(execute: Execute, database: str, table: str) -> None:
    deadline = time.monotonic() + MUTATION_TIMEOUT_S
    query = (
        "SELECT count() FROM system.mutations WHERE is_done = 0"
        f" AND database = {literal(database)} AND table = {literal(table)}"
    )
    while True:
        rows = execute(query)
        if not rows or int(rows[0][0]) == 0:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{table}: mutation still running after {MUTATION_TIMEOUT_S:.0f}s;"
                " see system.mutations"
            )
        time.sleep(0.1)
