"""Read latencies at campaign scale: leaderboards and status lookups over 10 million submissions.

The submissions table (storage/migrations, with its materialized views) is filled on the server
with INSERT ... SELECT FROM numbers(): links drawn with the demo generator's popularity weights
(so units, provinces and work regions follow the example campaign's uneven plans), statuses
85% accepted / 12% rejected / 3% test, receive times over the nine days of the collection phase
so far, ids that a client can recompute (md5 of the row number). Then, through the Store port:

  leaderboard   store.unit_counts(campaign) + core.counting.leaderboard, per level
                baseline: the same counts recomputed from the 10M rows (exact_unit_counts, what a
                leaderboard without the counts view would cost)
  status        store.submission_status(campaign, id) for random existing ids
                baseline: a `SELECT 1` round trip through the same store (the floor of any read)
  regional      a mix of regional queries (store.breakdown / store.answer_distribution, the
                API's /counts and /distribution): by province for a work region, by unit in a
                province, by day, by hour for one link, q1's answers in a province
                baseline: the same answer from the verdicts themselves, as the first version of
                storage/queries.py read it (`submissions FINAL`, no counts view, no PREWHERE);
                every figure's rows are checked equal to the baseline's

on the ClickHouse server (clickhouse-driver) and on chDB (the embedded store).

Review decisions (issue 18): after the fill, `--reviewed N` sheets (default: 1% of the rows,
100,000 at 10M) are covered by a decision marking them invalid, and a fifth of those by a later
one making them valid again (rows written straight into review_sheets, as Store.apply_review
writes them). Every figure above then includes the standing-status correction
(storage/standing.py), and `same_rows_as_baseline` compares it with the sheets recomputed one
by one under their standing status.

    python -m benchmarks.bench_queries [--quick] [--rows N] [--reviewed N] [--only server|chdb]
        [--out FILE]
"""

# ruff: noqa: E501 - the generating SQL reads better unwrapped
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import random
import tempfile
import time
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import support as s

CHUNK = 2_000_000
LIVE_ROWS = 100_000  # verdicts the live sink adds after the bulk fill
SETTLE_S = 240.0  # bound on the wait for background merges after the bulk fill
REVIEWED = 0  # sheets covered by review decisions (0: 1% of the rows); --reviewed
SLOTS = 4096  # the link lookup table: each link takes slots in proportion to its popularity


def _link_table(definition: Any) -> dict[str, list[str]]:
    """Per slot: link code, unit, province, work region, channel (popular links take more slots)."""
    from simulation.generator import SheetFactory

    factory = SheetFactory(definition)
    cum = factory._link_cum  # the generator's own popularity weights
    total = cum[-1]
    units = {u.id: u for u in definition.units}
    provinces = {p.id: p for p in definition.provinces}
    table: dict[str, list[str]] = {k: [] for k in ("link", "unit", "province", "region", "channel")}
    j = 0
    for slot in range(SLOTS):
        point = (slot + 0.5) / SLOTS * total
        while cum[j] < point:
            j += 1
        link = factory.links[j]
        unit = units[link.unit]
        table["link"].append(link.code)
        table["unit"].append(unit.id)
        table["province"].append(unit.province)
        table["region"].append(provinces[unit.province].work_region)
        table["channel"].append(link.channel)
    return table


def fill_sql(definition: Any, start: int, count: int, database: str | None = None) -> str:
    """One INSERT ... SELECT of `count` rows numbered from `start` (ClickHouse 18.16 and chDB)."""
    from storage.sql import literal

    t = _link_table(definition)
    tz = zoneinfo.ZoneInfo(definition.timezone)
    counting = next(p for p in definition.phases if p.counts)
    begin = int(dt.datetime.combine(counting.start, dt.time(), tz).timestamp())
    now = int(time.time())
    span = max(3600, now - begin)
    arr = {k: literal(v) for k, v in t.items()}
    table = f"{database}.submissions" if database else "submissions"
    # h: one hash per row, its bits split between the draws.
    return f"""
INSERT INTO {table} (submission_id, campaign, fingerprint, source_position, received_at, status,
  reasons, rules_version, phase, link_code, unit, province, work_region, channel,
  questionnaire_version, respondent_province, respondent_city, age_group, started_at,
  submitted_at, duration_seconds, device_hash, client, answers_json, opinion, first_of_id)
SELECT
  lower(hex(MD5(toString(n)))) AS submission_id,
  '2026' AS campaign,
  lower(hex(MD5(concat('fp', toString(n))))) AS fingerprint,
  concat('0:', toString(n)) AS source_position,
  toDateTime({begin} + (h % {span})) AS received_at,
  multiIf(r < 85, 'accepted', r < 97, 'rejected', 'test') AS status,
  multiIf(r < 85, emptyArrayString(), r < 91, ['too_fast'], r < 94, ['straight_lining'],
          r < 97, ['duplicate_respondent'], emptyArrayString()) AS reasons,
  '2026.1' AS rules_version,
  if(r < 97, 'collection', 'public_test') AS phase,
  {arr["link"]}[slot] AS link_code,
  {arr["unit"]}[slot] AS unit,
  {arr["province"]}[slot] AS province,
  {arr["region"]}[slot] AS work_region,
  {arr["channel"]}[slot] AS channel,
  '2026.1' AS questionnaire_version,
  {arr["province"]}[1 + (bitShiftRight(h, 20) % {SLOTS})] AS respondent_province,
  concat({arr["province"]}[slot], '01') AS respondent_city,
  ['18-24', '25-34', '35-44', '45-54', '55-64', '65+', 'under-18'][1 + (bitShiftRight(h, 32) % 7)] AS age_group,
  toDateTime({begin} + (h % {span}) - 200 - (bitShiftRight(h, 40) % 900)) AS started_at,
  toDateTime({begin} + (h % {span})) AS submitted_at,
  toFloat64(200 + (bitShiftRight(h, 40) % 900)) AS duration_seconds,
  lower(hex(MD5(concat('dev', toString(n))))) AS device_hash,
  lower(hex(MD5(concat('cl', toString(n % 1000003))))) AS client,
  concat('{{"q1":', toString(1 + bitShiftRight(h, 44) % 5), ',"q2":', toString(1 + bitShiftRight(h, 47) % 5),
         ',"q3":', toString(1 + bitShiftRight(h, 50) % 5), ',"q8":"1至3小时","q10":["网络诈骗"]}}') AS answers_json,
  if(bitShiftRight(h, 53) % 10 = 0, '希望加强个人信息保护', '') AS opinion,
  1 AS first_of_id
FROM (
  SELECT number + {start} AS n, cityHash64(number + {start}) AS h,
         1 + (intHash64(number + {start}) % {SLOTS}) AS slot,
         (intHash32(number + {start}) % 100) AS r
  FROM system.numbers LIMIT {count}
)"""


def fill(
    store: Any, execute: Callable[[str], object], definition: Any, rows: int, label: str
) -> float:
    """Migrates, then fills `rows` submissions (the views count them); returns the seconds."""
    store.migrate()
    t = time.perf_counter()
    for start in range(0, rows, CHUNK):
        execute(fill_sql(definition, start, min(CHUNK, rows - start)))
        s.log(f"queries ({label}): {min(rows, start + CHUNK):,} rows")
    for statement in review_fill_sql(rows, REVIEWED or rows // 100):
        execute(statement)
    s.log(f"queries ({label}): review decisions over {REVIEWED or rows // 100:,} sheets")
    return time.perf_counter() - t


def review_fill_sql(rows: int, reviewed: int, start: int = 0) -> list[str]:
    """Two decisions as review_sheets rows: `reviewed` sheets marked invalid, then a fifth of
    them valid again (a later order_key), chosen by a hash of the id; with `start`, among the
    rows numbered from `start` only (a store grown in steps, benchmarks/bench_curves.py)."""
    since = f" AND toUInt64(substring(source_position, 3)) >= {start}" if start else ""
    every = max(1, rows // max(1, reviewed))
    columns = (
        "campaign, submission_id, decision_id, order_key, status, judged_status, unit, province,"
        " work_region, link_code, channel, received_at, answers_json"
    )

    def decision(name: str, order: str, status: str, modulus: int, limit: int) -> str:
        return (
            f"INSERT INTO review_sheets ({columns}) SELECT campaign, submission_id, '{name}',"
            f" '{order}:{name}', '{status}', status, unit, province, work_region, link_code,"
            " channel, received_at, answers_json FROM submissions"
            f" WHERE first_of_id = 1 AND status IN ('accepted', 'rejected'){since}"
            f" AND cityHash64(submission_id) % {modulus} = 0 LIMIT {limit}"
        )

    return [
        decision("bench-invalid", "00000000000000000001", "rejected", every, reviewed),
        decision("bench-valid", "00000000000000000002", "accepted", every * 5, reviewed // 5),
    ]


def submission_id(n: int) -> str:
    return hashlib.md5(str(n).encode()).hexdigest()


def _timed(fn: Callable[[], object], repeat: int) -> list[float]:
    fn()  # warm: the first query of a kind loads marks and caches
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def regional_mix(definition: Any) -> dict[str, tuple[list[str] | None, Any]]:
    """name -> (by, filter) of a breakdown, or (None, filter) for q1's answer distribution: the
    most popular province, its work region and the most popular link of the fill."""
    from collections import Counter

    from core.ports import RegionFilter

    t = _link_table(definition)
    province = Counter(t["province"]).most_common(1)[0][0]
    region = t["region"][t["province"].index(province)]
    link = Counter(t["link"]).most_common(1)[0][0]
    return {
        "province_in_region": (["province"], RegionFilter(work_region=region)),
        "unit_in_province": (["unit"], RegionFilter(province=province)),
        "day": (["day"], RegionFilter()),
        "hour_for_link": (["hour"], RegionFilter(link=link)),
        "distribution_in_province": (None, RegionFilter(province=province)),
    }


def naive_distribution_sql(campaign: str, question: Any, filters: Any) -> str:
    """The distribution from the sheets one by one under their standing status (what
    storage/queries.py first read, `submissions FINAL`, plus the review decisions)."""
    from storage import queries, standing
    from storage.sql import literal

    value = f"extract(answers_json, {literal(queries.answer_pattern(question.id))})"
    where = queries._where(campaign, filters, queries.BASE_FILTERS) + " AND status = 'accepted'"
    return f"SELECT {value} AS g0, count() FROM {standing.sheets_sql(campaign)}{where} GROUP BY g0"


def measure_regional(
    store: Any, definition: Any, repeat: int, baseline_repeat: int | None = None
) -> dict[str, Any]:
    """p50/p95 of each query of the mix, and of the same answer from the verdicts themselves
    (`baseline_repeat` times: each is a full scan, seconds to minutes at tens of millions)."""
    from storage import queries

    campaign = definition.campaign
    question = definition.questionnaire.questions[0]
    out: dict[str, Any] = {}

    def breakdown(by: list[str], f: Any, source: Any = None) -> Callable[[], object]:
        return lambda: store._breakdown(queries.breakdown_query(campaign, by, f, source))

    def distribution(f: Any) -> Callable[[], object]:
        def run() -> object:
            d = store.answer_distribution(campaign, question, f)
            return d.accepted, d.total, d.counts

        return run

    def naive_distribution(f: Any) -> Callable[[], object]:
        sql = naive_distribution_sql(campaign, question, f)
        return lambda: queries.tally_answers(question, store._execute(sql))

    for name, (by, filters) in regional_mix(definition).items():
        if by is None:
            fast, naive = distribution(filters), naive_distribution(filters)
            rollup = queries.answer_counts_query(campaign, question, filters)
            source = "answer_counts" if rollup else "submissions"
        else:
            fast, naive = breakdown(by, filters), breakdown(by, filters, "submissions")
            source = queries.breakdown_query(campaign, by, filters).source
        out[name] = {
            "query": {"by": by, "filters": filters.given()}
            | ({"question": question.id} if by is None else {}),
            "source": source,
            "same_rows_as_baseline": fast() == naive(),
            "figure": s.summary_ms(_timed(fast, repeat)),
            "baseline": s.summary_ms(_timed(naive, baseline_repeat or max(5, repeat // 20))),
        }
    return out


def measure(
    store: Any,
    definition: Any,
    rows: int,
    repeat: int,
    regional: bool = True,
    baseline_repeat: int | None = None,
) -> dict[str, Any]:
    from core.counting import Level, leaderboard

    registry = s.registry_for(definition)
    state = registry.get(definition.campaign)
    campaign = definition.campaign
    out: dict[str, Any] = {}
    levels: tuple[Level, ...] = ("unit", "province", "work_region")
    for level in levels:

        def board(lv: Level = level) -> object:
            return leaderboard(state, store.unit_counts(campaign), lv)

        out[f"leaderboard_{level}"] = s.summary_ms(_timed(board, repeat))
    out["leaderboard_naive_exact"] = s.summary_ms(
        _timed(
            lambda: leaderboard(state, store.exact_unit_counts(campaign), "unit"),
            baseline_repeat or (5 if rows > 2_000_000 else 10),
        )
    )
    rnd = random.Random(5)
    ids = [submission_id(rnd.randrange(rows)) for _ in range(repeat * 2 + 1)]
    it = iter(ids)
    found = 0

    def status() -> None:
        nonlocal found
        found += store.submission_status(campaign, next(it)) is not None

    timings = _timed(status, repeat * 2)
    out["status"] = s.summary_ms(timings)
    out["status_found"] = found - 1 if found > len(timings) else found  # less the warm-up
    out["round_trip"] = s.summary_ms(_timed(lambda: store._execute("SELECT 1"), repeat))
    if regional:
        out["regional"] = measure_regional(store, definition, min(repeat, 100), baseline_repeat)
    counts = store.unit_counts(campaign)
    out["valid_total"] = sum(c.valid for c in counts.values())
    out["counted_total"] = sum(c.valid + c.rejected + c.test for c in counts.values())
    return out


def stream_live(store: Any, definition: Any) -> None:
    """LIVE_ROWS judged sheets through the store's insert_judged, as the live sink sends them."""
    verdicts = s.judged_rows(definition, LIVE_ROWS, f"live{s.tag()}")
    for i in range(0, len(verdicts), 5000):
        store.insert_judged(verdicts[i : i + 5000])


def server(rows: int, repeat: int) -> dict[str, Any]:
    from storage import open_store

    definition = s.bench_definition()
    database = f"bench_q_{s.tag()}"
    store = open_store(f"{s.clickhouse_base()}/{database}")
    client = s.clickhouse_client(database)
    try:
        fill_s = fill(store, client.execute, definition, rows, "server")

        def parts() -> dict[str, int]:
            rows_ = client.execute(
                "SELECT table, count() FROM system.parts WHERE active AND "
                f"database = '{database}' GROUP BY table"
            )
            return {str(k): int(v) for k, v in rows_}

        # Right after a bulk load (or a replay into a fresh database) the counts table holds the
        # view's rows unmerged: measured, but the figure is the campaign's steady state, where the
        # live sink keeps inserting 5,000-row batches (which is what triggers the merges): so
        # LIVE_ROWS verdicts go in through insert_judged, and merges get up to SETTLE_S.
        during = measure(store, definition, rows, max(20, repeat // 4), regional=False)
        during["active_parts"] = parts()
        during["unit_counts_rows"] = client.execute("SELECT count() FROM unit_counts")[0][0]
        stream_live(store, definition)
        settle_started = time.monotonic()
        while time.monotonic() - settle_started < SETTLE_S:
            merging = client.execute(
                f"SELECT count() FROM system.merges WHERE database = '{database}'"
            )[0][0]
            if not merging:
                break
            time.sleep(2)
        settled_s = time.monotonic() - settle_started
        result = measure(store, definition, rows, repeat)
        result |= {
            "rows": rows,
            "fill_seconds": round(fill_s, 1),
            "live_rows_streamed": LIVE_ROWS,
            "unit_counts_rows": client.execute("SELECT count() FROM unit_counts")[0][0],
            "active_parts": parts(),
            "settle_seconds": round(settled_s, 1),
            "right_after_fill": {
                k: v
                for k, v in during.items()
                if k.startswith(("leaderboard", "status", "active", "unit_counts"))
            },
        }
        return result
    finally:
        store.close()
        client.disconnect()
        s.drop_database(database)


def chdb(rows: int, repeat: int) -> dict[str, Any]:
    from storage.chdb_store import ChdbStore

    definition = s.bench_definition()
    with tempfile.TemporaryDirectory(prefix="bench-queries-chdb-") as tmp:
        store = ChdbStore(Path(tmp) / "chdb")
        try:
            fill_s = fill(store, store._execute, definition, rows, "chDB")
            stream_live(store, definition)
            result = measure(store, definition, rows, repeat)
            result |= {
                "rows": rows,
                "fill_seconds": round(fill_s, 1),
                "live_rows_streamed": LIVE_ROWS,
            }
            return result
        finally:
            store.close()


def regional_only(rows: int, repeat: int) -> dict[str, Any]:
    """chDB: fill, the review decisions, then only the regional mix and the per-unit counts
    (no live stream, no status lookups): the standing-status correction's cost, in minutes."""
    from core.counting import leaderboard
    from storage import standing
    from storage.chdb_store import ChdbStore

    definition = s.bench_definition()
    state = s.registry_for(definition).get(definition.campaign)
    with tempfile.TemporaryDirectory(prefix="bench-queries-chdb-") as tmp:
        store = ChdbStore(Path(tmp) / "chdb")
        try:
            fill_s = fill(store, store._execute, definition, rows, "chDB")
            reviewed = store._execute("SELECT uniqExact(submission_id) FROM review_sheets")
            moved = store._execute(
                f"SELECT count() FROM ({standing.corrections_sql(definition.campaign, ())})"
            )
            out: dict[str, Any] = {
                "rows": rows, "fill_seconds": round(fill_s, 1),
                "reviewed_sheets": int(reviewed[0][0]), "corrected_sheets": int(moved[0][0]),
                "leaderboard_unit": s.summary_ms(_timed(
                    lambda: leaderboard(state, store.unit_counts(definition.campaign), "unit"),
                    repeat)),
            }
            out["regional"] = measure_regional(store, definition, repeat)
            return out
        finally:
            store.close()


def run(quick: bool, rows: int | None = None, only: str | None = None) -> dict[str, Any]:
    rows = rows or (1_000_000 if quick else 10_000_000)
    repeat = 50 if quick else 200
    out: dict[str, Any] = {}
    for name, fn in (("server", server), ("chdb", chdb)):
        if only and name != only:
            continue
        try:
            out[name] = fn(rows, repeat)
        except s.BenchUnavailable as exc:
            out[name] = {"unavailable": str(exc)}
        except Exception as exc:
            s.log(f"queries {name} failed: {exc!r}")
            out[name] = {"failed": repr(exc)[:2000]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--only", choices=["server", "chdb"])
    parser.add_argument("--reviewed", type=int, default=0,
                        help="sheets covered by review decisions (default: 1%% of the rows)")
    parser.add_argument("--regional-only", action="store_true",
                        help="chDB only: the regional mix and unit counts after the fill")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    global REVIEWED
    REVIEWED = args.reviewed
    if args.regional_only:
        result = regional_only(args.rows or 1_000_000, 30 if args.quick else 100)
        s.emit(json.dumps({"chdb_regional": result}, indent=2), args.out)
        return
    text = json.dumps(run(args.quick, args.rows, args.only), indent=2)
    s.emit(text, args.out)


if __name__ == "__main__":
    main()
