"""RESULTS.md, rendered from latest.json's entries plus the hand-written benchmarks/analysis.md."""

# ruff: noqa: E501 - the report is long f-strings; wrapping them hides what they print
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from benchmarks import support as s

ANALYSIS_MD = s.BENCH_DIR / "analysis.md"
REPORT_DATE = os.environ.get("BENCH_REPORT_DATE", "2026-11-29")


def fmt(x: Any, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float | int):
        if unit == "ms":
            return f"{x:,.1f} ms"
        if unit == "MB":
            return f"{x:,.0f} MB"
        return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.3g}"
    return str(x)


def render(
    latest: dict[str, Any], md_dir: Path = s.BENCH_DIR, plot_dir: Path | None = s.RESULTS_DIR
) -> str:
    """RESULTS.md's text; the curves' plots are written to `plot_dir` (None: none written) and
    linked relative to `md_dir`, where the text goes."""
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
            f"{fmt(e['baseline'], e['unit'])} ({e['baseline_name']})"
            if e["baseline_name"]
            else "–"
        )
        fig = f"{fmt(e['figure'], e['unit'])} {e['unit'] if e['unit'] not in ('ms', 'MB') else ''}".strip()
        if e["figure"] is None:
            fig = f"not measured: {str(e['details'].get('why', ''))[:120]}"
        lines.append(
            f"| `{e['name']}` — {e['metric']} | {fig} | {base} | {fmt(e['ratio'])} "
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
        lines += details(e["name"], d)
        lines.append("")
    curves = latest.get("raw", {}).get("curves")
    made = [e for e in latest["benchmarks"] if e.get("benchmark") == "curves"]
    if curves and made and "failed" not in curves:
        from benchmarks.curves_md import section

        when = f"{made[0].get('mode', '')} run of {made[0].get('run_at', '')[:16]} UTC"
        lines += section(curves, when, md_dir, plot_dir)
    analysis = ANALYSIS_MD.read_text() if ANALYSIS_MD.exists() else ""
    return "\n".join(lines) + "\n" + analysis


def details(name: str, d: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if name.startswith("collector_vs_"):
        for key, x in d.get("ceilings", {}).items():
            cores = x["cpu"]["cores"]
            out.append(
                f"- {key}: {x['records_per_s']:,} records/s ({x.get('mb_per_s')} MB/s), latency "
                f"p50 {x.get('p50_ms')} ms, p99 {x.get('p99_ms')} ms; cores: client "
                f"{cores.get('client')}, broker {cores.get('kafka_broker')}; other processes "
                f"{x['cpu']['foreign_cores']}; load average {x['cpu']['loadavg_1m']}"
            )
        c = d.get("collector") or {}
        if c:
            out.append(
                f"- {c['target']}: {c['ok_rps']:,.0f} req/s, p50 {c['p50_ms']:.2f} ms, p99 "
                f"{c['p99_ms']:.2f} ms, non-2xx {c['non_2xx']}, every 2xx in the log: "
                f"{c['every_2xx_in_log']}; cores: "
                + ", ".join(f"{k} {v}" for k, v in c["cpu"]["cores"].items())
                + f"; load average {c['cpu'].get('loadavg_1m')}"
            )
        st = d.get("settings", {})
        out.append(
            f"- records: the raw log's, median {st.get('record_bytes_median')} B (range "
            f"{st.get('record_bytes_range')}), key {st.get('key_bytes')} B; "
            f"{st.get('partitions')} partitions; wrk `{st.get('collector_wrk')}`"
        )
    elif name.startswith(("collector_", "naive_")):
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
    elif name.startswith("curves_freshness_"):
        out.append(f"- rates {d['rates']} sheets/s: table and plot under **Curves** below.")
    elif name.startswith(("curves_queries_", "cpu_per_sheet_")):
        out.append("- table and plot under **Curves** below; capacity: docs/capacity.md.")
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
