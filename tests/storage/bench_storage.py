"""Store figures: insert rate in 5,000-row batches per adapter, and read latencies at 1M rows.

Not collected by pytest. Run: python -m tests.storage.bench_storage [--clickhouse URL] [--rows N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence

from schemas.events import Status, SubmissionJudged
from storage import SqlStore, open_store, sql
from storage.chdb_store import ChdbStore

BATCH = 5_000
STATUSES: list[Status] = ["accepted", "rejected", "test"]
UNITS = [f"unit-{i:03d}" for i in range(135)]
START = dt.datetime(2023, 9, 13, tzinfo=dt.UTC)


def verdicts(n: int, seed: int = 1) -> list[SubmissionJudged]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        received = START + dt.timedelta(seconds=rnd.randrange(10 * 86400))
        unit = rnd.choice(UNITS)
        status: Status = rnd.choices(STATUSES, [85, 12, 3])[0]
        out.append(SubmissionJudged(
            submission_id=str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
            campaign="2023", fingerprint=f"{rnd.getrandbits(64):016x}", source_position=f"0:{i}",
            received_at=received, status=status,
            reasons=("too_fast",) if status == "rejected" else (), rules_version="r1",
            phase="collection", link_code=f"L{unit[-3:]}{rnd.randrange(4)}", unit=unit,
            province=f"{11 + UNITS.index(unit) % 31}", work_region=f"wr{UNITS.index(unit) % 7}",
            channel=rnd.choice(["wechat", "weibo", "web", "poster"]),
            questionnaire_version="2023.1", respondent_province="44", respondent_city="4401",
            age_group="25-34", started_at=received - dt.timedelta(seconds=300),
            submitted_at=received - dt.timedelta(seconds=1), duration_seconds=299.0,
            device_hash=f"{rnd.getrandbits(64):016x}", client=f"{rnd.getrandbits(64):016x}",
            answers_json=json.dumps({f"q{k}": rnd.randrange(1, 6) for k in range(1, 25)}),
            opinion="网络安全感满意度" if rnd.random() < 0.1 else "",
        ))
    return out


class JsonEachRowChdbStore(ChdbStore):
    """The alternative measured for chDB: FORMAT JSONEachRow instead of VALUES text."""

    def _insert(self, table: str, columns: Sequence[str], rows: Sequence[sql.Row]) -> None:
        body = "\n".join(json.dumps(dict(zip(columns, row, strict=True)), ensure_ascii=False)
                         for row in rows)
        self._session.query(f"INSERT INTO {table} ({', '.join(columns)}) FORMAT JSONEachRow\n"
                            + body)


def rate(store: SqlStore, rows: list[SubmissionJudged], label: str) -> float:
    times = []
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        t = time.perf_counter()
        assert store.insert_judged(batch) == len(batch)
        times.append(time.perf_counter() - t)
    per_s = len(rows) / sum(times)
    median_ms = statistics.median(times) * 1000
    print(f"{label:45s} {per_s:>10,.0f} rows/s   median batch {median_ms:6.0f} ms")
    return per_s


def timed(label: str, f: Callable[[], object], repeat: int = 5) -> None:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    median_ms, min_ms = statistics.median(times) * 1000, min(times) * 1000
    print(f"{label:45s} median {median_ms:8.1f} ms  (min {min_ms:.1f})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clickhouse", help="clickhouse://host:port/db (database is dropped)")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--insert-rows", type=int, default=100_000)
    args = ap.parse_args()
    t = time.perf_counter()
    rows = verdicts(args.rows)
    print(f"generated {len(rows):,} verdicts in {time.perf_counter() - t:.1f} s")
    sample = rows[: args.insert_rows]

    with tempfile.TemporaryDirectory() as tmp:
        for db, variant, kind in (("b_values", "VALUES", ChdbStore),
                                  ("b_json", "JSONEachRow", JsonEachRowChdbStore)):
            with kind(tmp, db) as store:
                store.migrate()
                rate(store, sample, f"chDB insert_judged, {variant}")
                timed("chDB resend of a stored 5,000 batch",
                      lambda: store.insert_judged(sample[:BATCH]))
        with ChdbStore(tmp, "b_million") as store:
            store.migrate()
            rate(store, rows, f"chDB insert_judged, {len(rows):,} rows")
            timed(f"chDB unit_counts, {len(rows):,} rows", lambda: store.unit_counts("2023"))
            timed(f"chDB exact_unit_counts, {len(rows):,} rows",
                  lambda: store.exact_unit_counts("2023"))
            sid = rows[len(rows) // 2].submission_id
            timed("chDB submission_status", lambda: store.submission_status("2023", sid))
            timed(f"chDB iter_judge_memory, {len(rows):,} rows",
                  lambda: sum(1 for _ in store.iter_judge_memory()), repeat=1)
            timed(f"chDB resend of a stored 5,000 batch, {len(rows):,}",
                  lambda: store.insert_judged(rows[:BATCH]))

    if args.clickhouse:
        with open_store(args.clickhouse) as store:
            store._execute(f"DROP DATABASE IF EXISTS {store.database}")
        with open_store(args.clickhouse) as store:
            store.migrate()
            rate(store, rows, f"server insert_judged (native), {len(rows):,} rows")
            timed(f"server unit_counts, {len(rows):,} rows", lambda: store.unit_counts("2023"))
            timed(f"server exact_unit_counts, {len(rows):,} rows",
                  lambda: store.exact_unit_counts("2023"))
            timed(f"server iter_judge_memory, {len(rows):,} rows",
                  lambda: sum(1 for _ in store.iter_judge_memory()), repeat=1)
            timed(f"server resend of a stored 5,000 batch, {len(rows):,}",
                  lambda: store.insert_judged(rows[:BATCH]))
            store._execute(f"DROP DATABASE IF EXISTS {store.database}")


if __name__ == "__main__":
    main()
