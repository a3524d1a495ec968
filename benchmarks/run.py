"""`make bench`: run every measurement; write benchmarks/results/latest.json and RESULTS.md.

    python -m benchmarks.run                                  # everything, full length (~45 min)
    python -m benchmarks.run --only collector,pipeline --quick

Benchmarks: collector, pipeline, sink, queries, e2e, memory, soak. Each runs in its own process (chDB
keeps one data directory per process, and a crash in one must not lose the others) and reports
JSON; this module turns every report into entries of one shape,

    {"name", "metric", "unit", "figure", "baseline", "baseline_name", "ratio", "ratio_meaning",
     "floor", "meets_floor", "mode", "run_at", "details"}

A run of some benchmarks replaces only their entries in latest.json; the others are kept, with
the date and mode of the run that made them. RESULTS.md is rendered from latest.json plus the
hand-written benchmarks/analysis.md (profiles, what was tried, what limits the design).
"""

# ruff: noqa: E501 - the report is long f-strings; wrapping them hides what they print
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import support as s

ALL = ("collector", "pipeline", "sink", "queries", "e2e", "memory", "soak", "reports")
# `reports` (an hour at 10 M sheets) runs only when asked: `make bench-reports`.
DEFAULT = tuple(b for b in ALL if b != "reports")
LATEST = s.RESULTS_DIR / "latest.json"
RESULTS_MD = s.BENCH_DIR / "RESULTS.md"
ANALYSIS_MD = s.BENCH_DIR / "analysis.md"
# Upper bounds per benchmark (seconds), full / quick: a stuck benchmark is killed and reported.
TIMEOUTS = {
    "collector": (1800, 600),
    "pipeline": (1500, 600),
    "sink": (600, 300),
    "queries": (2700, 900),  # the 10M fill feeds four views
    "e2e": (900, 400),
    "memory": (2100, 600),
    "soak": (1500, 400),
    "reports": (7200, 900),
}
REPORT_DATE = os.environ.get("BENCH_REPORT_DATE", "2026-11-29")


def run_one(name: str, quick: bool, work: Path) -> dict[str, Any]:
    out = work / f"{name}.json"
    args = [s.PY, "-m", f"benchmarks.bench_{name}", "--out", str(out)] + (
        ["--quick"] if quick else []
    )
    timeout = TIMEOUTS[name][1 if quick else 0]
    s.log(f"=== {name} ({'quick' if quick else 'full'}, at most {timeout // 60} min)")
    started = time.monotonic()
    proc = subprocess.Popen(args, cwd=s.ROOT, start_new_session=True)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(30)
        return {"failed": f"timed out after {timeout} s"}
    elapsed = time.monotonic() - started
    if proc.returncode != 0 or not out.exists():
        return {"failed": f"exit status {proc.returncode}"}
    report: dict[str, Any] = json.loads(out.read_text())
    report["_seconds"] = round(elapsed)
    return report


def _entry(
    name: str,
    metric: str,
    unit: str,
    figure: float | None,
    baseline: float | None,
    baseline_name: str,
    ratio_meaning: str,
    floor: str | None = None,
    meets: bool | None = None,
    details: dict[str, Any] | None = None,
    ratio: float | None = None,
) -> dict[str, Any]:
    if ratio is None and figure is not None and baseline:
        ratio = s.ratio(figure, baseline)
    return {
        "name": name,
        "metric": metric,
        "unit": unit,
        "figure": figure,
        "baseline": baseline,
        "baseline_name": baseline_name,
        "ratio": ratio,
        "ratio_meaning": ratio_meaning,
        "floor": floor,
        "meets_floor": meets,
        "details": details or {},
    }


def _failed(bench: str, report: dict[str, Any], key: str = "") -> dict[str, Any] | None:
    part = report.get(key, {}) if key else report
    why = part.get("failed") or part.get("unavailable")
    if why:
        return _entry(
            f"{bench}{'_' + key if key else ''}",
            "not measured",
            "",
            None,
            None,
            "",
            "",
            details={"why": why},
        )
    return None


def entries_collector(r: dict[str, Any]) -> list[dict[str, Any]]:
    if "failed" in r:
        return [_failed("collector", r)]  # type: ignore[list-item]
    t = r["targets"]
    kafka_name = r["settings"]["kafka_multiprocess_target"]
    out = []

    def brief(x: dict[str, Any]) -> dict[str, Any]:
        return {
            k: x.get(k)
            for k in (
                "target",
                "description",
                "workers",
                "ok_rps",
                "p50_ms",
                "p99_ms",
                "non_2xx",
                "cpu",
                "ok_answers_total",
                "log_records",
                "every_2xx_in_log",
                "rounds_rps",
                "notes",
            )
        }

    noop2, noop1 = t.get("noop_2w"), t.get("noop_1w")
    kafka = t.get(kafka_name)
    if kafka and noop2:
        ratio = s.ratio(kafka["ok_rps"], noop2["ok_rps"])
        backed = bool(kafka["every_2xx_in_log"]) and kafka["non_2xx"] == 0
        out.append(
            _entry(
                "collector_kafka_acks_all",
                "requests/s (202, acks=all), 2 processes",
                "req/s",
                kafka["ok_rps"],
                noop2["ok_rps"],
                "noop_app, 2 processes (the HTTP limit)",
                "collector / no-op",
                ">= 0.5 of no-op, every 202 backed by an ack",
                ratio >= 0.5 and backed,
                {
                    "collector": brief(kafka),
                    "noop": brief(noop2),
                    "ratio_vs_naive": s.ratio(kafka["ok_rps"], t["naive_2w"]["ok_rps"])
                    if "naive_2w" in t
                    else None,
                    "settings": r["settings"],
                },
            )
        )
    elif kafka_name in r.get("unavailable", {}):
        out.append(
            _entry(
                "collector_kafka_acks_all",
                "not measured",
                "",
                None,
                None,
                "",
                "",
                details={"why": r["unavailable"][kafka_name]},
            )
        )
    for name, x in t.items():
        if not name.startswith(kafka_name + "+") or not noop2:
            continue
        variant = name.split("+", 1)[1]
        out.append(
            _entry(
                f"collector_kafka_proposal_{variant}",
                f"requests/s, proposal `{variant}` (benchmarks/proposals; not the code as it is)",
                "req/s",
                x["ok_rps"],
                noop2["ok_rps"],
                "noop_app, 2 processes (the HTTP limit)",
                "collector / no-op",
                details={
                    "collector": brief(x),
                    "noop": brief(noop2),
                    "ratio_vs_code_as_it_is": s.ratio(x["ok_rps"], kafka["ok_rps"])
                    if kafka
                    else None,
                },
            )
        )
    single = t.get("collector_kafka_cli_1w")
    if single and noop1:
        out.append(
            _entry(
                "collector_kafka_cli_single_process",
                "requests/s, `survey-ingest collector` as shipped",
                "req/s",
                single["ok_rps"],
                noop1["ok_rps"],
                "noop_app, 1 process",
                "collector / no-op",
                details={"collector": brief(single), "noop": brief(noop1)},
            )
        )
    emb = t.get("collector_embedded")
    if emb and noop1:
        out.append(
            _entry(
                "collector_embedded",
                "requests/s (202 after fdatasync), 1 process (by design)",
                "req/s",
                emb["ok_rps"],
                noop1["ok_rps"],
                "noop_app, 1 process",
                "embedded / no-op (1 process)",
                details={
                    "collector": brief(emb),
                    "noop": brief(noop1),
                    "ratio_vs_noop_2w": s.ratio(emb["ok_rps"], noop2["ok_rps"]) if noop2 else None,
                },
            )
        )
    naive = t.get("naive_2w")
    if naive and noop2:
        out.append(
            _entry(
                "naive_fastapi_kafka",
                "requests/s, FastAPI + pydantic + kafka-python, 2 processes",
                "req/s",
                naive["ok_rps"],
                noop2["ok_rps"],
                "noop_app, 2 processes",
                "naive / no-op",
                details={"naive": brief(naive)},
            )
        )
    for name, why in r.get("unavailable", {}).items():
        if name != kafka_name:
            out.append(
                _entry(
                    f"collector_target_{name}",
                    "not measured",
                    "",
                    None,
                    None,
                    "",
                    "",
                    details={"why": why},
                )
            )
    return out


def entries_pipeline(r: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    d = r.get("distributed", {})
    if (f := _failed("pipeline", r, "distributed")) is not None:
        out.append(f)
    elif d:
        stored = d["worker_stored"]["events_per_s"]
        ratio = d["ratio_stored"]
        out.append(
            _entry(
                "pipeline_worker_kafka",
                "events/s of one worker: judged, stored and counted",
                "events/s",
                stored,
                d["baseline_events_per_s"],
                f"plain {d['baseline_client']} consumer reading the same topic",
                "worker / plain read",
                ">= 0.25 of the plain read rate",
                ratio >= 0.25,
                {
                    k: d[k]
                    for k in (
                        "records",
                        "partitions",
                        "plain_kafka_python",
                        "plain_aiokafka",
                        "worker_judged",
                        "worker_stored",
                        "ratio_judged",
                        "worker_cpu",
                        "proposal_plain_consumer_worker",
                    )
                }
                | {
                    "ratio_vs_kafka_python_read": s.ratio(
                        stored, d["plain_kafka_python"]["events_per_s"]
                    )
                },
            )
        )
    e = r.get("embedded", {})
    if (f := _failed("pipeline", r, "embedded")) is not None:
        out.append(f)
    elif e:
        out.append(
            _entry(
                "pipeline_embedded_processor",
                "events/s: judge + chDB insert + offset commit",
                "events/s",
                e["processor_events_per_s"],
                e["judge_only_events_per_s"],
                "judging alone (decode + judge)",
                "processor / judge-only",
                details=e,
            )
        )
    return out


def entries_sink(r: dict[str, Any]) -> list[dict[str, Any]]:
    if (f := _failed("sink", r)) is not None:
        return [f]
    return [
        _entry(
            "sink_clickhouse_insert_judged",
            "rows/s through store.insert_judged (idempotent)",
            "rows/s",
            r["store_rows_per_s"],
            r["plain_rows_per_s"],
            "plain clickhouse-driver bulk INSERT, same rows",
            "insert_judged / plain",
            ">= 0.7 of the plain insert",
            r["ratio"] >= 0.7,
            r,
        )
    ]


def entries_queries(r: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for where in ("server", "chdb"):
        q = r.get(where)
        if not q:
            continue
        if (f := _failed("queries", r, where)) is not None:
            out.append(f)
            continue
        worst = max(
            ("unit", "province", "work_region"), key=lambda lv: q[f"leaderboard_{lv}"]["p95_ms"]
        )
        lb = q[f"leaderboard_{worst}"]
        naive = q["leaderboard_naive_exact"]
        label = "ClickHouse server" if where == "server" else "chDB"
        rows = f"{q['rows']:,}"
        out.append(
            _entry(
                f"queries_leaderboard_{where}",
                f"leaderboard p95 at {rows} submissions ({label})",
                "ms",
                lb["p95_ms"],
                naive["p95_ms"],
                "the same counts from the base table (no counts view)",
                "figure / baseline (lower is better)",
                "p95 <= 100 ms",
                lb["p95_ms"] <= 100,
                {
                    "p50_ms": lb["p50_ms"],
                    "worst_level": worst,
                    "levels": {
                        lv: q[f"leaderboard_{lv}"] for lv in ("unit", "province", "work_region")
                    },
                    "naive_exact": naive,
                    "rows": q["rows"],
                    "fill_seconds": q.get("fill_seconds"),
                    "right_after_fill": q.get("right_after_fill"),
                    "active_parts": q.get("active_parts"),
                    "settle_seconds": q.get("settle_seconds"),
                    "unit_counts_rows": q.get("unit_counts_rows"),
                    "live_rows_streamed": q.get("live_rows_streamed"),
                    "ratio_vs_floor": s.ratio(lb["p95_ms"], 100),
                },
            )
        )
        st = q["status"]
        out.append(
            _entry(
                f"queries_status_{where}",
                f"status lookup p95 at {rows} submissions ({label})",
                "ms",
                st["p95_ms"],
                q["round_trip"]["p95_ms"],
                "SELECT 1 round trip through the same store",
                "figure / baseline (lower is better)",
                "p95 <= 100 ms",
                st["p95_ms"] <= 100,
                {
                    "p50_ms": st["p50_ms"],
                    "status": st,
                    "found": q["status_found"],
                    "round_trip": q["round_trip"],
                    "ratio_vs_floor": s.ratio(st["p95_ms"], 100),
                },
            )
        )
        for query, x in (q.get("regional") or {}).items():
            fig, base = x["figure"], x["baseline"]
            asked = ", ".join(f"{k}={v}" for k, v in x["query"]["filters"].items()) or "all"
            what = (
                f"{x['query']['question']} answers"
                if x["query"]["by"] is None
                else f"counts by {','.join(x['query']['by'])}"
            )
            out.append(
                _entry(
                    f"queries_regional_{query}_{where}",
                    f"regional query p95 at {rows} submissions ({label}): {what} ({asked})",
                    "ms",
                    fig["p95_ms"],
                    base["p95_ms"],
                    "the same answer from the verdicts (submissions FINAL, no counts view)",
                    "figure / baseline (lower is better)",
                    "p95 <= 100 ms",
                    fig["p95_ms"] <= 100 and bool(x["same_rows_as_baseline"]),
                    {
                        "p50_ms": fig["p50_ms"],
                        "figure": fig,
                        "baseline": base,
                        "query": x["query"],
                        "source": x["source"],
                        "same_rows_as_baseline": x["same_rows_as_baseline"],
                        "rows": q["rows"],
                        "ratio_p50": s.ratio(fig["p50_ms"], base["p50_ms"]),
                        "ratio_vs_floor": s.ratio(fig["p95_ms"], 100),
                    },
                )
            )
    return out


def entries_e2e(r: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for where in ("embedded", "distributed"):
        e = r.get(where)
        if not e:
            continue
        if (f := _failed("e2e", r, where)) is not None:
            out.append(f)
            continue
        lo = e["loaded"]
        rate = e["load"].get("ok_rps")
        bound = " (lower bound: some probes never became visible)" if lo.get("lower_bound") else ""
        out.append(
            _entry(
                f"e2e_freshness_{where}",
                f"202 -> counted in the leaderboard, p95 at {rate} sheets/s{bound}",
                "ms",
                lo["p95_ms"],
                e["idle"]["p95_ms"],
                "the same probes on the idle stack",
                "loaded / idle (lower is better)",
                "p95 <= 2000 ms",
                lo["p95_ms"] <= 2000 and not lo.get("lower_bound"),
                {
                    "p50_ms": lo["p50_ms"],
                    "loaded": lo,
                    "idle": e["idle"],
                    "load": e["load"],
                    "cpu": e["cpu"],
                    "notes": e.get("notes"),
                    "ratio_vs_floor": s.ratio(lo["p95_ms"], 2000),
                },
            )
        )
    return out


def entries_memory(r: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for where in ("embedded", "distributed"):
        m = r.get(where)
        if not m:
            continue
        if (f := _failed("memory", r, where)) is not None:
            out.append(f)
            continue
        for role, x in m["roles"].items():
            if not x.get("samples"):
                continue
            out.append(
                _entry(
                    f"memory_{where}_{role}",
                    f"max RSS over a {m['seconds']:g} s soak at {m['rate']} sheets/s",
                    "MB",
                    x["max_mb"],
                    x["idle_mb"],
                    "RSS idle after start-up",
                    "max / idle",
                    details={k: v for k, v in x.items() if k != "series_mb"}
                    | {"series_mb": x["series_mb"]},
                )
            )
    return out


def entries_soak(r: dict[str, Any]) -> list[dict[str, Any]]:
    if (f := _failed("soak", r)) is not None:
        return [f]
    e = r.get("embedded", {})
    if (f := _failed("soak", r, "embedded")) is not None:
        return [f]
    x, rss = e["exact"], e["rss"]
    held = (
        bool(e["no_errors"])
        and bool(x["counted_once"])
        and bool(x["units_match"])
        and e["achieved_rps"] >= 0.95 * e["target_rate"]
    )
    flat = rss["slope_mb_per_min_second_half"] <= 1.0
    minutes = f"{e['seconds'] / 60:g} min"
    return [
        _entry(
            "soak_embedded_load",
            f"sheets/s held for {minutes} at half capacity: 0 errors, every 202 counted once",
            "req/s",
            e["achieved_rps"],
            e["capacity_rps"],
            "the embedded collector's measured capacity",
            "held / capacity",
            ">= 95% of the target rate, no error answer, store counts = the 202s",
            held,
            {k: v for k, v in e.items() if k != "rss"},
        ),
        _entry(
            "soak_embedded_rss",
            f"max RSS of `serve` over the {minutes} soak (slope {rss['slope_mb_per_min_second_half']} MB/min)",
            "MB",
            rss["max_mb"],
            rss["idle_mb"],
            "RSS idle after start-up",
            "max / idle",
            "slope over the second half <= 1 MB/min",
            flat,
            rss,
        ),
    ]


def entries_reports(r: dict[str, Any]) -> list[dict[str, Any]]:
    if (f := _failed("reports", r)) is not None:
        return [f]
    first, resumed = r["first"], r["resumed"]
    return [
        _entry(
            "reports_all_eligible",
            f"`report --all-eligible` over {r['rows']:,} sheets: {first['reports']} reports"
            f" (threshold {r['threshold']:,}), 2 layout workers",
            "s",
            first["seconds"],
            resumed["seconds"],
            "the same command again (resumed: every report skipped)",
            "first / resumed",
            details={"peak_rss_mb": first["peak_rss_mb"], "fill_seconds": r["fill_seconds"],
                     "pages": r["pages"], "build_seconds": r["build_seconds"],
                     "render_seconds": r["render_seconds"]},
        )
    ]


ENTRIES = {
    "collector": entries_collector,
    "pipeline": entries_pipeline,
    "sink": entries_sink,
    "queries": entries_queries,
    "e2e": entries_e2e,
    "memory": entries_memory,
    "soak": entries_soak,
    "reports": entries_reports,
}


# -- RESULTS.md ----------------------------------------------------------------------------------


def _fmt(x: Any, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float | int):
        if unit == "ms":
            return f"{x:,.1f} ms"
        if unit == "MB":
            return f"{x:,.0f} MB"
        return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.3g}"
    return str(x)


def render(latest: dict[str, Any]) -> str:
    m = latest["machine"]
    lines = [
        "# Benchmarks",
        "",
        f"Date: {REPORT_DATE}. Produced by `make bench` (`python -m benchmarks.run`); figures in "
        "`benchmarks/results/latest.json`. Every figure has a baseline measured in the same run on "
        "the same machine, and their ratio.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu_model']}, `nproc` = {m['nproc']}; memory {m['mem_total_gib']} GiB; "
        f"Linux {m['kernel']}; Python {m['python']}.",
        "- `free -h` at the start of the run:",
        "",
        "```",
        m["free_h"],
        "```",
        "",
        "- Everything runs on this one machine: load generator (wrk), servers, Kafka (one KRaft "
        "broker), ClickHouse 18.16, the benchmark harness. **wrk itself takes most of a core** "
        "(its CPU is measured and reported with each collector figure), so no server here ever "
        "has the two cores to itself; the comparison stays fair because every target runs under "
        "the same wrk settings, the same bodies and the same server stack, one target at a time.",
        "- The machine was shared with other engineers' test runs. Each measurement records the CPU "
        "that processes other than its own used meanwhile (`foreign_cores`); above "
        f"{s.DISTURBED_CORES} cores it is marked disturbed and repeated (collector: up to 3 "
        "attempts per round, 2 rounds, best undisturbed attempt kept).",
        "",
        "## Figures",
        "",
        "| benchmark | figure | baseline | ratio | floor | meets | mode |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in latest["benchmarks"]:
        meets = {True: "yes", False: "**no**", None: "–"}[e.get("meets_floor")]
        base = (
            f"{_fmt(e['baseline'], e['unit'])} ({e['baseline_name']})"
            if e["baseline_name"]
            else "–"
        )
        fig = f"{_fmt(e['figure'], e['unit'])} {e['unit'] if e['unit'] not in ('ms', 'MB') else ''}".strip()
        if e["figure"] is None:
            fig = f"not measured: {str(e['details'].get('why', ''))[:120]}"
        lines.append(
            f"| `{e['name']}` — {e['metric']} | {fig} | {base} | {_fmt(e['ratio'])} "
            f"({e['ratio_meaning']}) | {e['floor'] or '–'} | {meets} | "
            f"{e.get('mode', '')} {e.get('run_at', '')[:16]} |"
        )
    lines += ["", "## Details per benchmark", ""]
    for e in latest["benchmarks"]:
        d = e["details"]
        if e["figure"] is None:
            continue
        lines.append(f"### `{e['name']}`")
        lines.append("")
        lines += _details(e["name"], d)
        lines.append("")
    analysis = ANALYSIS_MD.read_text() if ANALYSIS_MD.exists() else ""
    return "\n".join(lines) + "\n" + analysis


def _details(name: str, d: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if name.startswith(("collector_", "naive_")):
        for role in ("collector", "naive", "noop"):
            x = d.get(role)
            if not x:
                continue
            cpu = x["cpu"]
            out.append(
                f"- {role}: {x['description']}: {x['ok_rps']:,.0f} req/s (rounds: "
                f"{', '.join(f'{v:,.0f}' for v in x.get('rounds_rps') or [])}), p50 {x['p50_ms']:.2f} ms, "
                f"p99 {x['p99_ms']:.2f} ms, non-2xx {x['non_2xx']}; cores used: "
                + ", ".join(f"{k} {v}" for k, v in cpu["cores"].items())
                + f"; other processes {cpu['foreign_cores']}"
                + (
                    f"; 2xx answered (warm-up included) {x['ok_answers_total']:,}, records in the log "
                    f"{x['log_records']:,} -> every 2xx in the log: {x['every_2xx_in_log']}"
                    if x.get("log_records") is not None
                    else ""
                )
            )
        if d.get("ratio_vs_code_as_it_is"):
            out.append(f"- proposal / the code as it is, same run: {d['ratio_vs_code_as_it_is']}x")
        if d.get("ratio_vs_naive"):
            out.append(f"- collector / naive FastAPI endpoint: {d['ratio_vs_naive']}x")
        if d.get("settings"):
            out.append(
                f"- settings: `{d['settings']['wrk']}`; {d['settings']['server_stack']}; "
                f"`survey-ingest collector --workers`: "
                f"{'available' if d['settings']['cli_has_workers_flag'] else 'not available (benchmarks/serve_workers.py + kafka_collector_app.py used)'}"
            )
    elif name == "pipeline_worker_kafka":
        out.append(
            f"- {d['records']:,} records, {d['partitions']} partitions. Plain reads: "
            f"kafka-python {d['plain_kafka_python']['events_per_s']:,}/s, aiokafka "
            f"{d['plain_aiokafka']['events_per_s']:,}/s."
        )
        out.append(
            f"- worker: judged {d['worker_judged']['events_per_s']:,}/s, stored+counted "
            f"{d['worker_stored']['events_per_s']:,}/s (ratio vs kafka-python's read: "
            f"{d['ratio_vs_kafka_python_read']}); cores: "
            + ", ".join(f"{k} {v}" for k, v in d.get("worker_cpu", {}).get("cores", {}).items())
        )
        plain = d.get("proposal_plain_consumer_worker") or {}
        if plain.get("events_per_s"):
            out.append(
                f"- proposal (benchmarks/proposals/plain_worker.py): the same records judged by a plain "
                f"aiokafka consumer loop + insert_judged, no faust: {plain['events_per_s']:,} events/s "
                f"(x{plain['events_per_s'] / max(1, d['worker_stored']['events_per_s']):.1f} the faust worker; "
                f"{s.ratio(plain['events_per_s'], d['plain_kafka_python']['events_per_s'])} of kafka-python's read)."
            )
    elif name == "pipeline_embedded_processor":
        out.append(
            f"- {d['records']:,} records; batch of 5,000: p50 {d['processor_batch_ms']['p50_ms']} ms, "
            f"p95 {d['processor_batch_ms']['p95_ms']} ms; rows stored {d['rows_stored']:,}."
        )
    elif name == "sink_clickhouse_insert_judged":
        out.append(
            f"- {d['rows']:,} verdicts in batches of {d['batch_rows']:,}; per batch: insert_judged "
            f"p50 {d['store_batch_ms']['p50_ms']} ms, plain p50 {d['plain_batch_ms']['p50_ms']} ms; "
            f"a redelivered batch (nothing inserted): {d['redelivered_rows_per_s']:,} rows/s."
        )
    elif name.startswith("queries_leaderboard"):
        lv = d["levels"]
        out.append(
            f"- {d['rows']:,} rows (filled in {d.get('fill_seconds')} s). p50/p95 per level: "
            + "; ".join(f"{k} {v['p50_ms']}/{v['p95_ms']} ms" for k, v in lv.items())
            + f". Without the counts view: {d['naive_exact']['p50_ms']}/{d['naive_exact']['p95_ms']} ms."
        )
        after = d.get("right_after_fill")
        if after:
            out.append(
                "- right after the bulk fill, before any merge collapsed the counts table "
                f"({after.get('unit_counts_rows'):,} rows in unit_counts): p50/p95 "
                + "; ".join(
                    f"{lv} {after[f'leaderboard_{lv}']['p50_ms']}/{after[f'leaderboard_{lv}']['p95_ms']} ms"
                    for lv in ("unit", "province", "work_region")
                )
                + f"; the figure above is after {d.get('live_rows_streamed', 0):,} more verdicts "
                f"through insert_judged, as the live sink sends them, and the merges they trigger "
                f"({d.get('unit_counts_rows', 0):,} rows in unit_counts)."
            )
    elif name.startswith("queries_regional"):
        f, b = d["figure"], d["baseline"]
        out.append(
            f"- {d['rows']:,} rows; from `{d['source']}`: p50 {f['p50_ms']} ms, p95 {f['p95_ms']} ms, "
            f"p99 {f['p99_ms']} ms over {f['n']} queries; baseline (the verdicts, FINAL): p50 "
            f"{b['p50_ms']} ms, p95 {b['p95_ms']} ms over {b['n']}; same rows as the baseline: "
            f"{d['same_rows_as_baseline']}."
        )
    elif name.startswith("queries_status"):
        out.append(
            f"- p50 {d['p50_ms']} ms, p95 {d['status']['p95_ms']} ms, p99 {d['status']['p99_ms']} ms "
            f"over {d['status']['n']} lookups ({d['found']} found); SELECT 1: p50 "
            f"{d['round_trip']['p50_ms']} ms."
        )
    elif name.startswith("e2e_"):
        lo, idle = d["loaded"], d["idle"]
        out.append(
            f"- loaded: p50 {lo['p50_ms']} ms, p95 {lo['p95_ms']} ms, max {lo['max_ms']} ms over "
            f"{lo['probes']} probes ({lo['not_visible']} never visible); idle: p50 {idle['p50_ms']} ms, "
            f"p95 {idle['p95_ms']} ms; load achieved {d['load'].get('ok_rps')} req/s "
            f"(non-2xx {d['load'].get('non_2xx')}); cores: "
            + ", ".join(f"{k} {v}" for k, v in d["cpu"].get("cores", {}).items())
        )
    elif name == "soak_embedded_load":
        x, load = d["exact"], d["load"]
        out.append(
            f"- {d['seconds']:g} s paced at {d['target_rate']}/s (capacity {d['capacity_rps']:,.0f} "
            f"req/s: {d['capacity_source']}); achieved {d['achieved_rps']:,.0f}/s, p50 "
            f"{load['p50_us'] / 1e3:.1f} ms, p99 {load['p99_us'] / 1e3:.1f} ms, max "
            f"{load['max_us'] / 1e3:.0f} ms; errors: "
            + ", ".join(f"{k} {v}" for k, v in d["errors"].items())
        )
        out.append(
            f"- {x['sheets_taken_202']:,} sheets got a 202 ({x['sheets_sent']:,} sent); the store "
            f"counted valid {x['store_valid']:,} (expected {x['expected_valid']:,}), rejected "
            f"{x['store_rejected']:,} (expected {x['expected_rejected']:,}), test "
            f"{x['store_test']}; unit leaderboard equal to the expected: {x['units_match']}; "
            f"all counted {x['drained_in_s']} s after the load; cores: "
            + ", ".join(f"{k} {v}" for k, v in d["cpu"].get("cores", {}).items())
            + f"; other processes {d['cpu'].get('foreign_cores')}; errors or tracebacks in "
            f"serve's log: {d.get('serve_log_errors')}"
        )
    elif name == "soak_embedded_rss":
        out.append(
            f"- idle {d['idle_mb']} MB, start of load {d['start_mb']} MB, end {d['end_mb']} MB, "
            f"max {d['max_mb']} MB, after the drain {d['after_drain_mb']} MB; slope "
            f"{d['slope_mb_per_min_second_half']} MB/min over the second half, "
            f"{d['slope_mb_per_min_whole_load']} MB/min over the whole load ({d['samples']} samples)."
        )
    elif name.startswith("memory_"):
        out.append(
            f"- idle {d['idle_mb']} MB, start of load {d['start_mb']} MB, end {d['end_mb']} MB, max "
            f"{d['max_mb']} MB; slope over the second half {d['slope_mb_per_min']} MB/min = "
            f"{d['slope_mb_per_million_submissions']} MB per million submissions."
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(ALL)}")
    parser.add_argument("--quick", action="store_true", help="short runs (minutes, not ~45)")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="rebuild the entries and RESULTS.md from latest.json's stored reports, measuring nothing",
    )
    args = parser.parse_args()
    chosen = [b.strip() for b in args.only.split(",")] if args.only else list(DEFAULT)
    unknown = set(chosen) - set(ALL)
    if unknown:
        raise SystemExit(f"unknown benchmarks: {sorted(unknown)}; choose from {', '.join(ALL)}")
    s.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    latest: dict[str, Any] = json.loads(LATEST.read_text()) if LATEST.exists() else {}
    if not args.render_only:
        machine = s.machine()
        run_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        mode = "quick" if args.quick else "full"
        kept = [e for e in latest.get("benchmarks", []) if e.get("benchmark") not in chosen]
        fresh: list[dict[str, Any]] = []
        raw: dict[str, Any] = latest.get("raw", {})
        with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
            for name in chosen:
                report = run_one(name, args.quick, Path(tmp))
                raw[name] = report
                try:
                    made = ENTRIES[name](report)
                except Exception as exc:
                    made = [
                        _entry(
                            name,
                            "not measured",
                            "",
                            None,
                            None,
                            "",
                            "",
                            details={"why": f"report unreadable: {exc!r}"},
                        )
                    ]
                for e in made:
                    e |= {"benchmark": name, "mode": mode, "run_at": run_at}
                fresh += made
                order = {b: i for i, b in enumerate(ALL)}
                # Others' entries as they are on disk now, not as when this run started: two runs
                # of different benchmarks at once (a long soak beside a short one) keep both.
                on_disk = json.loads(LATEST.read_text()) if LATEST.exists() else {}
                kept = [
                    e
                    for e in on_disk.get("benchmarks", [])
                    if e.get("benchmark") not in chosen and e.get("benchmark") in order
                ]
                raw = {**on_disk.get("raw", {}), **{n: raw[n] for n in chosen if n in raw}}
                latest = {
                    "date": REPORT_DATE,
                    "machine": machine,
                    "run_at": run_at,
                    "benchmarks": sorted(kept + fresh, key=lambda e: order[e["benchmark"]]),
                    "raw": raw,
                }
                tmp_path = LATEST.with_suffix(".json.tmp")
                tmp_path.write_text(json.dumps(latest, indent=2, ensure_ascii=False))
                tmp_path.replace(LATEST)
                RESULTS_MD.write_text(render(latest))
    if args.render_only and latest.get("raw"):
        # Entries again from the stored reports (after a change to how they are read).
        order = {b: i for i, b in enumerate(ALL)}
        rebuilt = []
        for name in ALL:
            report = latest["raw"].get(name)
            old = [e for e in latest["benchmarks"] if e.get("benchmark") == name]
            if report is None or not old:
                rebuilt += old
                continue
            for e in ENTRIES[name](report):
                e |= {"benchmark": name, "mode": old[0]["mode"], "run_at": old[0]["run_at"]}
                rebuilt.append(e)
        latest["benchmarks"] = sorted(rebuilt, key=lambda e: order[e["benchmark"]])
        LATEST.write_text(json.dumps(latest, indent=2, ensure_ascii=False))
    RESULTS_MD.write_text(render(latest))
    for e in latest.get("benchmarks", []):
        print(
            f"{e['name']:45s} {_fmt(e['figure'], e['unit']):>14} {e['unit'] if e['unit'] not in ('ms', 'MB') else '':8s} "
            f"ratio {_fmt(e['ratio']):>8}  floor {e['floor'] or '-'}: "
            f"{ {True: 'yes', False: 'NO', None: '-'}[e.get('meets_floor')] }"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
