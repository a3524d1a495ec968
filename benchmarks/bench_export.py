"""Export throughput and memory: `survey-ingest export`'s code path against the engine writing the
same rows itself, in the same run, on chDB and on the ClickHouse server.

The store is filled in SQL (`INSERT ... SELECT ... FROM numbers`) with N generated sheets of the
example campaign (135 units, 494 links, 12 questions with Chinese options, 1 in 10 rejected, 1
in 20 with free text, 1 in 10 with an opinion). Then, each in a process of its own so its peak
RSS (ru_maxrss, from wait4) is its own:

  ours      exports.run.Export(...).write(file): the cut and the counts, the store's Arrow stream
            of the columns the engine computes (exports/sql.py), the writer
  engine    the same sheets (storage/sheets.py's query) written by the engine itself:
            chDB `INTO OUTFILE ... FORMAT CSVWithNames | Parquet`; on the server
            `clickhouse-client --query "... FORMAT CSVWithNames" > file` (18.16 has no Parquet)

The engine writes the stored columns as they are; ours also turns answers_json into one column
per question (and per option), names units and provinces, formats times (in SQL, by the same
engine): more work for the same rows, which is the point of the comparison (the floor the issue
sets is 0.5 of the engine).

    python -m benchmarks.bench_export [--sheets N] [--formats csv,parquet]
                                      [--backends chdb,clickhouse] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import support as s

CAMPAIGN = "bench-export"
CHUNK = 1_000_000


def _definition() -> Any:
    from schemas.campaign import load_campaign_file
    from simulation import EXAMPLE_CAMPAIGN

    d = load_campaign_file(EXAMPLE_CAMPAIGN)
    return d.model_copy(update={"campaign": CAMPAIGN})


def _state() -> Any:
    import datetime as dt

    from core.registry import Registry
    from schemas.events import CampaignDefined

    registry = Registry()
    registry.apply(CampaignDefined(campaign=CAMPAIGN, defined_at=dt.datetime(2026, 1, 1,
                                   tzinfo=dt.UTC), definition=_definition()))
    return registry.get(CAMPAIGN)


def _arr(values: list[str]) -> str:
    from storage.sql import literal

    return literal(values)


def fill_sql(offset: int, count: int) -> str:
    """INSERT of `count` generated sheets numbered from `offset` (SQL for 18.16 and chDB)."""
    from schemas.campaign import MultiQuestion, SingleQuestion

    d = _definition()
    units = {u.id: u for u in d.units}
    provinces = {p.id: p for p in d.provinces}
    links = d.links
    codes = _arr([lk.code for lk in links])
    unit = _arr([lk.unit for lk in links])
    prov = _arr([units[lk.unit].province for lk in links])
    region = _arr([provinces[units[lk.unit].province].work_region for lk in links])
    channel = _arr([lk.channel for lk in links])
    parts: list[str] = []
    for i, q in enumerate(sorted(d.questionnaire.questions, key=lambda q: q.id)):
        key = json.dumps(q.id) + ": "
        if isinstance(q, MultiQuestion):
            combos = [", ".join(json.dumps(o, ensure_ascii=False) for o in q.options[j:j + 2])
                      for j in range(len(q.options) - 1)]
            value = (f"concat('[', arrayElement({_arr(combos)}, "
                     f"(number + {i}) % {len(combos)} + 1), ']')")
        elif isinstance(q, SingleQuestion):
            opts = [json.dumps(o, ensure_ascii=False) for o in q.options]
            value = f"arrayElement({_arr(opts)}, (number + {i}) % {len(opts)} + 1)"
        elif q.type == "text":
            value = ("if(number % 20 = 0, '\"经常接到冒充客服的诈骗电话，希望加强治理\"', '\"\"')")
        else:
            value = f"toString((number + {i}) % 5 + 1)"
        parts.append(f"'{'' if not parts else ', '}{key}', {value}")
    answers = "concat('{', " + ", ".join(parts) + ", '}')"
    n_links = len(links)
    return f"""
INSERT INTO submissions (submission_id, campaign, fingerprint, source_position, received_at,
    status, reasons, rules_version, phase, link_code, unit, province, work_region, channel,
    questionnaire_version, respondent_province, respondent_city, age_group, started_at,
    submitted_at, duration_seconds, device_hash, client, answers_json, opinion, first_of_id)
SELECT
    concat(lower(hex(cityHash64(number))), '-', toString(number)),
    '{CAMPAIGN}', lower(hex(sipHash64(number))), toString(number),
    toDateTime(1790000000 + number % 864000),
    if(number % 10 = 0, 'rejected', 'accepted'),
    if(number % 10 = 0, ['too_fast'], emptyArrayString()),
    'bench', 'collection',
    arrayElement({codes}, number % {n_links} + 1),
    arrayElement({unit}, number % {n_links} + 1),
    arrayElement({prov}, number % {n_links} + 1),
    arrayElement({region}, number % {n_links} + 1),
    arrayElement({channel}, number % {n_links} + 1),
    '{d.questionnaire.version}', arrayElement({prov}, (number * 7) % {n_links} + 1),
    '', '25-34', toDateTime(1790000000 - 300), toDateTime(1790000000), 300.5,
    concat('h:', lower(hex(cityHash64(number, 1)))), 'c-hash',
    {answers},
    if(number % 10 = 3, '希望加强个人信息保护，及时处理网络诈骗举报', ''),
    1
FROM (SELECT number + {offset} AS number FROM system.numbers LIMIT {count})
"""


# -- children (one process each: their peak RSS is their own) -------------------------------------

def child_fill(url: str, sheets: int) -> dict[str, Any]:
    from storage import open_store

    started = time.perf_counter()
    with open_store(url) as store:
        store.migrate()
        for offset in range(0, sheets, CHUNK):
            with store._lock:
                store._execute(fill_sql(offset, min(CHUNK, sheets - offset)))
    return {"seconds": round(time.perf_counter() - started, 2)}


def child_ours(url: str, fmt: str, path: str, block_rows: str = "0") -> dict[str, Any]:
    from exports.run import Export, ExportRequest
    from storage import open_store

    state = _state()  # parsing the example campaign's YAML is not part of an export
    import pyarrow.compute  # noqa: F401 - nor is the first import of Arrow's kernels

    with open_store(url) as store:
        started = time.perf_counter()
        request = ExportRequest(CAMPAIGN, fmt, status="all")
        export = (Export(store, state, request, block_rows=int(block_rows)) if int(block_rows)
                  else Export(store, state, request))
        prepared = time.perf_counter()
        export.write(Path(path))
        done = time.perf_counter()
    return {"rows": export.rows, "seconds": round(done - started, 3),
            "prepare_seconds": round(prepared - started, 3)}


def _engine_query(url: str) -> str:
    from core.ports import RegionFilter
    from storage import open_store, sheets

    with open_store(url) as store:
        cut = store.clock()
    return sheets.sheets_sql(CAMPAIGN, RegionFilter(), "all", cut)


def child_engine(url: str, fmt: str, path: str) -> dict[str, Any]:
    """The same rows written by the engine: chDB in process, the server through its client."""
    query = _engine_query(url)
    engine_format = {"csv": "CSVWithNames", "parquet": "Parquet"}[fmt]
    started = time.perf_counter()
    if url.startswith("chdb://"):
        from storage import open_store

        with open_store(url) as store, store._lock:
            store._execute(f"{query} INTO OUTFILE '{path}' FORMAT {engine_format}")
    else:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        with open(path, "wb") as out:
            subprocess.run(
                ["clickhouse-client", "--host", parts.hostname or "127.0.0.1",
                 "--port", str(parts.port or 9000), "--database", parts.path.strip("/"),
                 "--query", f"{query} FORMAT {engine_format}"],
                stdout=out, check=True, timeout=3600,
            )
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 3)}


def run_child(*args: str) -> dict[str, Any]:
    """Runs `python -m benchmarks.bench_export --child ...`; its JSON plus its peak RSS (for the
    server's engine side, the clickhouse-client process is a grandchild: RUSAGE of the child's
    children is folded in by the kernel into ru_maxrss of whichever is larger)."""
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_export", "--child", *args],
                            stdout=subprocess.PIPE, cwd=s.ROOT)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError(f"child {args} failed with status {status}")
    result: dict[str, Any] = json.loads(out)
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    # CPU seconds of the child (and of what it waited for): on a shared machine wall time
    # measures the neighbours as much as the export.
    result["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 2)
    return result


def run(sheets: int, formats: list[str], backends: list[str]) -> dict[str, Any]:
    results: dict[str, Any] = {"sheets": sheets, "machine": s.machine(), "backends": {}}
    work = Path(tempfile.mkdtemp(prefix="bench-export-"))
    try:
        for backend in backends:
            if backend == "chdb":
                url = f"chdb://{work / 'chdb'}?database=bench"
            else:
                database = f"bench_export_{uuid.uuid4().hex[:8]}"
                url = f"{s.clickhouse_base()}/{database}"
            s.log(f"export bench: filling {sheets:,} sheets on {backend}")
            fill = run_child("fill", url, str(sheets))
            rows: dict[str, Any] = {"fill_seconds": fill["seconds"]}
            try:
                for fmt in formats:
                    ours = run_child("ours", url, fmt, str(work / f"ours.{fmt}"))
                    ours["bytes"] = (work / f"ours.{fmt}").stat().st_size
                    ours["rows_per_s"] = round(ours["rows"] / ours["seconds"])
                    ours["rows_per_cpu_s"] = round(ours["rows"] / max(ours["cpu_seconds"], 0.01))
                    entry: dict[str, Any] = {"ours": ours}
                    if fmt in ("csv", "parquet") and not (backend != "chdb" and fmt == "parquet"):
                        engine = run_child("engine", url, fmt, str(work / f"engine.{fmt}"))
                        engine["bytes"] = (work / f"engine.{fmt}").stat().st_size
                        engine["rows_per_s"] = round(ours["rows"] / engine["seconds"])
                        engine["rows_per_cpu_s"] = round(
                            ours["rows"] / max(engine["cpu_seconds"], 0.01))
                        entry["engine"] = engine
                        entry["ratio"] = s.ratio(ours["rows_per_s"], engine["rows_per_s"])
                    rows[fmt] = entry
                    s.log(f"export bench {backend} {fmt}: {json.dumps(entry)}")
                    for f in work.glob(f"*.{fmt}"):
                        f.unlink()
            finally:
                if backend != "chdb":
                    s.drop_database(url.rsplit("/", 1)[1])
            results["backends"][backend] = rows
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sheets", type=int, default=200_000)
    p.add_argument("--formats", default="csv,parquet")
    p.add_argument("--backends", default="chdb,clickhouse")
    p.add_argument("--out", type=Path)
    p.add_argument("--child", nargs="+")
    args = p.parse_args()
    if args.child:
        kind, *rest = args.child
        children: dict[str, Callable[..., dict[str, Any]]] = {
            "fill": lambda u, n: child_fill(u, int(n)), "ours": child_ours,
            "engine": child_engine}
        print(json.dumps(children[kind](*rest)))
        return
    result = run(args.sheets, args.formats.split(","), args.backends.split(","))
    s.emit(json.dumps(result, indent=2, ensure_ascii=False), args.out)


if __name__ == "__main__":
    main()
