"""Rows/s into ClickHouse through the store's idempotent insert_judged vs a plain bulk insert.

Both sides write the same verdicts (judged from generated sheets), in the same 5,000-row
batches, into identically migrated databases (the submissions table with both materialized
views), batch by batch alternately so that any disturbance hits both:

  store   ClickHouseStore.insert_judged(batch): verdict -> column conversion, the lookup of
          keys already stored, then one native INSERT of the new rows (columnar)
  plain   clickhouse-driver Client.execute("INSERT INTO submissions (...) VALUES", rows) with the
          rows already converted: the write alone

Also measured: the same batches again through insert_judged (a redelivery: nothing inserted).
The stored-keys lookup goes through an external table since 2026-11-29 (it was
benchmarks/proposals/sink_lookup.py, measured here as a third side until it was adopted).

    python -m benchmarks.bench_sink [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from benchmarks import support as s

BATCH = 5000


def run(quick: bool) -> dict[str, Any]:
    """Two rounds (one with --quick), a third when one was disturbed; of the undisturbed rounds
    the lower-middle ratio is reported (the conservative one of two)."""
    rounds = []
    for attempt in range(3):
        result = run_once(quick)
        rounds.append(result)
        s.log(
            f"sink round {attempt + 1}: insert_judged {result['store_rows_per_s']:,} rows/s, plain "
            f"{result['plain_rows_per_s']:,} rows/s, ratio {result['ratio']}, other processes "
            f"{result['cpu']['foreign_cores']} cores"
        )
        calm = [r for r in rounds if not r["cpu"]["disturbed"]]
        if len(calm) >= (1 if quick else 2):
            break
    pool = [r for r in rounds if not r["cpu"]["disturbed"]] or rounds
    best = (
        min(pool, key=lambda r: r["cpu"]["foreign_cores"])
        if len(pool) == 1
        else sorted(pool, key=lambda r: r["ratio"])[(len(pool) - 1) // 2]
    )  # the lower middle
    best["rounds"] = [
        {k: r[k] for k in ("store_rows_per_s", "plain_rows_per_s", "ratio")}
        | {"foreign_cores": r["cpu"]["foreign_cores"]}
        for r in rounds
    ]
    return best


def run_once(quick: bool) -> dict[str, Any]:
    from storage import open_store, sql

    rows_total = 20_000 if quick else 100_000
    base = s.clickhouse_base()
    run_tag = s.tag()
    store_db, plain_db = f"bench_sink_store_{run_tag}", f"bench_sink_plain_{run_tag}"
    definition = s.bench_definition()
    s.log(f"sink: judging {rows_total:,} generated sheets")
    verdicts = s.judged_rows(definition, rows_total, f"sink{run_tag}")
    batches = [verdicts[i : i + BATCH] for i in range(0, len(verdicts), BATCH)]
    plain_rows = [[sql.submission_row(j) for j in batch] for batch in batches]
    insert = sql.insert_sql("submissions", sql.SUBMISSION_COLUMNS)

    store = open_store(f"{base}/{store_db}")
    plain_store = open_store(f"{base}/{plain_db}")  # only to migrate it the same way
    client = s.clickhouse_client(plain_db)
    try:
        store.migrate()
        plain_store.migrate()
        plain_store.close()
        times: dict[str, list[float]] = {"store": [], "plain": []}
        meter = s.CpuMeter({"clickhouse": s.clickhouse_pids}).__enter__()
        for i, batch in enumerate(batches):
            order = ["store", "plain"] if i % 2 == 0 else ["plain", "store"]  # each first as often
            for side in order:
                t = time.perf_counter()
                if side == "plain":
                    client.execute(insert, plain_rows[i])
                else:
                    inserted = store.insert_judged(batch)
                    if inserted != len(batch):
                        raise RuntimeError(
                            f"{side}: insert_judged stored {inserted} of {len(batch)}"
                        )
                times[side].append(time.perf_counter() - t)
        cpu = meter.stop()
        store_times, plain_times = times["store"], times["plain"]
        replay_times = []
        for batch in batches:
            t = time.perf_counter()
            again = store.insert_judged(batch)
            replay_times.append(time.perf_counter() - t)
            if again:
                raise RuntimeError(f"a redelivered batch inserted {again} rows")
        stored = client.execute(f"SELECT count() FROM {store_db}.submissions")[0][0]
        plain_count = client.execute("SELECT count() FROM submissions")[0][0]
    finally:
        store.close()
        client.disconnect()
        for db in (store_db, plain_db):
            s.drop_database(db)
    store_rate = rows_total / sum(store_times)
    plain_rate = rows_total / sum(plain_times)
    return {
        "rows": rows_total,
        "batch_rows": BATCH,
        "store_rows_per_s": round(store_rate),
        "plain_rows_per_s": round(plain_rate),
        "ratio": s.ratio(store_rate, plain_rate),
        "store_batch_ms": s.summary_ms(store_times),
        "plain_batch_ms": s.summary_ms(plain_times),
        "redelivered_rows_per_s": round(rows_total / sum(replay_times)),
        "rows_stored": stored,
        "rows_stored_plain": plain_count,
        "cpu": cpu,
        "server": base,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    text = json.dumps(run(args.quick), indent=2)
    s.emit(text, args.out)


if __name__ == "__main__":
    main()
