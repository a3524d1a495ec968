"""Every table counted from the verdicts, what it must hold, and the SQL that checks, repairs and
rebuilds it (reconcile, start-up repair, erase, replay's hashes).

Each count table is a projection of the submissions table kept by a materialized view on insert
(0002-0004, 0007, 0010). Its *reference* is the same projection recomputed from the verdicts
themselves (FINAL: each verdict once): a difference means a view missed an insert (a crash
between the base insert and the view's), a row was altered, or something wrote twice.
Review decisions are not in these tables (storage/standing.py adds them at read time); their
table, review_sheets, is checked against the registry's decisions by `runtime` code, which
knows the decisions (storage.reconcile).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from storage.queries import ANSWER_KEY, ANSWER_PAIR, ANSWER_PREFIX
from storage.sql import in_list, literal


@dataclass(frozen=True)
class CountTable:
    name: str
    keys: tuple[str, ...]
    values: tuple[str, ...]
    # The reference: SELECT <keys>, <values> FROM <source> WHERE <condition> GROUP BY <keys>,
    # with `expressions` giving each key and value over the verdicts.
    expressions: tuple[str, ...]
    source: str
    condition: str
    # device_firsts holds one row per key, no counts: compared as a set.
    is_set: bool = False

    def reference_sql(self, scope: str = "") -> str:
        select = ", ".join(
            f"{expr} AS {col}" if expr != col else col
            for expr, col in zip(self.expressions, (*self.keys, *self.values), strict=True)
        )
        where = self.condition + (f" AND {scope}" if scope else "")
        return (
            f"SELECT {select} FROM {self.source} WHERE {where}"
            f" GROUP BY {', '.join(self.keys)}"
        )

    def stored_sql(self, scope: str = "") -> str:
        values = (
            ", ".join(f"toUInt64(1) AS {v}" for v in self.values) if self.is_set
            else ", ".join(f"sum({v}) AS {v}" for v in self.values)
        )
        where = f" WHERE {scope}" if scope else ""
        return (
            f"SELECT {', '.join(self.keys)}, {values} FROM {self.name}{where}"
            f" GROUP BY {', '.join(self.keys)}"
        )

    def differences_sql(self, scope: str = "") -> str:
        """Per key where the table and its reference differ: keys, then per value the stored
        and the expected figure (Int64)."""
        keys = ", ".join(self.keys)
        stored = ", ".join(
            f"toInt64({v}) AS s_{v}, toInt64(0) AS e_{v}" for v in self.values
        )
        expected = ", ".join(
            f"toInt64(0) AS s_{v}, toInt64({v}) AS e_{v}" for v in self.values
        )
        sums = ", ".join(f"sum(s_{v}) AS ss_{v}, sum(e_{v}) AS se_{v}" for v in self.values)
        differ = " OR ".join(f"ss_{v} != se_{v}" for v in self.values)
        return (
            f"SELECT {keys}, {sums} FROM ("
            f"SELECT {keys}, {stored} FROM ({self.stored_sql(scope)})"
            f" UNION ALL SELECT {keys}, {expected} FROM ({self.reference_sql(scope)})"
            f") GROUP BY {keys} HAVING {differ} ORDER BY {keys}"
        )

    def insert_sql(self, scope: str = "") -> str:
        """Refill: INSERT the reference (into a table emptied over `scope` first)."""
        if self.is_set:  # no counts to sum: the keys alone
            keys = ", ".join(self.keys)
            return (
                f"INSERT INTO {self.name} ({keys}) SELECT {keys}"
                f" FROM ({self.reference_sql(scope)})"
            )
        columns = ", ".join((*self.keys, *self.values))
        return f"INSERT INTO {self.name} ({columns}) {self.reference_sql(scope)}"

    def top_up_sql(self) -> str:
        """INSERT what the reference has beyond the table, never lowering a count: the start-up
        repair after a crash between the base insert and a view's."""
        keys = ", ".join(self.keys)
        short = " OR ".join(f"se_{v} > ss_{v}" for v in self.values)
        if self.is_set:
            return (
                f"INSERT INTO {self.name} ({keys}) SELECT {keys}"
                f" FROM ({self.differences_sql()}) WHERE {short}"
            )
        missing = ", ".join(f"toUInt64(greatest(se_{v} - ss_{v}, 0))" for v in self.values)
        columns = ", ".join((*self.keys, *self.values))
        return (
            f"INSERT INTO {self.name} ({columns}) SELECT {keys}, {missing}"
            f" FROM ({self.differences_sql()}) WHERE {short}"
        )

    def hash_sql(self, campaign: str) -> str:
        """One number for the table's content in a campaign (order-free: a sum of row hashes
        over the merged rows, zero rows left out), for comparing a replay with the live store."""
        keys = ", ".join(self.keys)
        nonzero = " OR ".join(f"{v} != 0" for v in self.values)
        return (
            f"SELECT sum(cityHash64({keys}, {', '.join(self.values)})), count() FROM"
            f" ({self.stored_sql(f'campaign = {literal(campaign)}')}) WHERE {nonzero}"
        )


_SHEET_COUNTS: Final = (
    "countIf(first_of_id = 1 AND status = 'accepted')",
    "countIf(first_of_id = 1 AND status = 'rejected')",
    "countIf(first_of_id = 1 AND status = 'test')",
    "countIf(first_of_id = 0)",
)
_COUNT_VALUES: Final = ("valid", "rejected", "test", "conflicts")

UNIT_COUNTS: Final = CountTable(
    "unit_counts",
    ("campaign", "unit", "province", "work_region", "day"),
    _COUNT_VALUES,
    ("campaign", "unit", "province", "work_region", "day", *_SHEET_COUNTS),
    "submissions FINAL",
    "unit != ''",
)
LINK_HOUR_COUNTS: Final = CountTable(
    "link_hour_counts",
    ("campaign", "link_code", "channel", "unit", "day", "hour"),
    _COUNT_VALUES,
    ("campaign", "link_code", "channel", "unit", "day", "hour", *_SHEET_COUNTS),
    "submissions FINAL",
    "link_code != ''",
)
ANSWER_COUNTS: Final = CountTable(
    "answer_counts",
    ("campaign", "question", "province", "work_region", "unit", "link_code", "channel", "day",
     "value"),
    ("n",),
    ("campaign", f"extract(pair, {literal(ANSWER_KEY)})", "province", "work_region", "unit",
     "link_code", "channel", "day", f"replaceRegexpOne(pair, {literal(ANSWER_PREFIX)}, '')",
     "count()"),
    "submissions FINAL ARRAY JOIN"
    f" arrayPushFront(extractAll(answers_json, {literal(ANSWER_PAIR)}), '') AS pair",
    "status = 'accepted' AND link_code != ''",
)
DEVICE_FIRSTS: Final = CountTable(
    "device_firsts",
    ("campaign", "device_hash", "submission_id"),
    ("present",),
    ("campaign", "device_hash", "submission_id", "toUInt64(1)"),
    "submissions FINAL",
    "status = 'accepted' AND device_hash != ''",
    is_set=True,
)
COUNT_TABLES: Final = (UNIT_COUNTS, LINK_HOUR_COUNTS, ANSWER_COUNTS, DEVICE_FIRSTS)
BY_NAME: Final = {t.name: t for t in COUNT_TABLES}


def scope_sql(campaign: str | None = None, days: list[str] | None = None,
              table: CountTable | None = None) -> str:
    """A condition both a count table and the verdicts can be filtered by: a campaign and,
    for the tables keyed by day, some days ("YYYY-MM-DD")."""
    parts = [] if campaign is None else [f"campaign = {literal(campaign)}"]
    if days and (table is None or "day" in table.keys):
        parts.append(f"day IN {in_list(sorted(set(days)))}")
    return " AND ".join(parts)
