"""PROPOSAL for storage/clickhouse_store.py: look up the keys already stored through an external
table sent with the query (native protocol, columnar) instead of a 5,000-item IN list parsed as
SQL text. Same result, same lock, same insert; measured in benchmarks.bench_sink.

The change in storage: give SqlStore an overridable `_existing_keys(keys) -> set[Key]` (the
current IN-list query is the default, kept for chDB) and override it in ClickHouseStore with the
query below.
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.events import SubmissionJudged
from storage import sql
from storage.clickhouse_store import ClickHouseStore


class ExternalTableLookupStore(ClickHouseStore):
    def _existing_keys(self, keys: list[sql.Key]) -> set[sql.Key]:
        campaigns = sorted({k[0] for k in keys})
        rows = self._client.execute(
            "SELECT campaign, submission_id, fingerprint FROM submissions"
            f" WHERE campaign IN {sql.in_list(campaigns)}"
            " AND submission_id IN (SELECT id FROM batch_ids)",
            external_tables=[
                {
                    "name": "batch_ids",
                    "structure": [("id", "String")],
                    "data": [{"id": k[1]} for k in keys],
                }
            ],
        )
        return {(str(r[0]), str(r[1]), str(r[2])) for r in rows}

    def insert_judged(self, rows: Sequence[SubmissionJudged]) -> int:
        fresh: dict[sql.Key, SubmissionJudged] = {}
        for judged in rows:
            fresh.setdefault(sql.verdict_key(judged), judged)
        if not fresh:
            return 0
        values = {key: sql.submission_row(j) for key, j in fresh.items()}
        with self._lock:
            for key in self._existing_keys(list(values)):
                values.pop(key, None)
            if values:
                self._insert("submissions", sql.SUBMISSION_COLUMNS, list(values.values()))
        return len(values)
