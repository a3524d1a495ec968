"""Each benchmark's JSON report turned into entries (benchmarks/entry_shape.py): what was
measured, against which baseline, their ratio, and the floor it must meet."""

# ruff: noqa: E501 - the entries are long f-strings; wrapping them hides what they print
from __future__ import annotations

from typing import Any

from benchmarks import support as s
from benchmarks.entry_shape import entry, failed


def entries_collector(r: dict[str, Any]) -> list[dict[str, Any]]:
    if "failed" in r:
        return [failed("collector", r)]  # type: ignore[list-item]
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
            entry(
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
            entry(
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
            entry(
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
            entry(
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
            entry(
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
            entry(
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
                entry(
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
    if (f := failed("pipeline", r, "distributed")) is not None:
        out.append(f)
    elif d:
        stored = d["worker_stored"]["events_per_s"]
        ratio = d["ratio_stored"]
        out.append(
            entry(
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
    if (f := failed("pipeline", r, "embedded")) is not None:
        out.append(f)
    elif e:
        out.append(
            entry(
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
    if (f := failed("sink", r)) is not None:
        return [f]
    return [
        entry(
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
        if (f := failed("queries", r, where)) is not None:
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
            entry(
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
            entry(
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
                entry(
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
        if (f := failed("e2e", r, where)) is not None:
            out.append(f)
            continue
        lo = e["loaded"]
        rate = e["load"].get("ok_rps")
        bound = " (lower bound: some probes never became visible)" if lo.get("lower_bound") else ""
        out.append(
            entry(
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
        if (f := failed("memory", r, where)) is not None:
            out.append(f)
            continue
        for role, x in m["roles"].items():
            if not x.get("samples"):
                continue
            out.append(
                entry(
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
    if (f := failed("soak", r)) is not None:
        return [f]
    e = r.get("embedded", {})
    if (f := failed("soak", r, "embedded")) is not None:
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
        entry(
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
        entry(
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
    if (f := failed("reports", r)) is not None:
        return [f]
    first, resumed = r["first"], r["resumed"]
    return [
        entry(
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


def entries_ceilings(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The Kafka-mode collector against what the broker takes from Kafka's own Java producer and
    what kafka-python sends in a plain loop, all in one run (benchmarks/bench_ceilings.py)."""
    if (f := failed("ceilings", r)) is not None:
        return [f]
    ceilings, collector, settings = r["ceilings"], r["collector"], r["settings"]
    why = r.get("unavailable", {})
    details = {"ceilings": ceilings, "settings": settings, "unavailable": why}
    out = []
    pairs = (
        ("collector_vs_java_producer", "collector_kafka_cli_2w", "java_producer",
         "requests/s (202, acks=all), 2 processes, against Kafka's Java producer flat out",
         f"ProducerPerformance, acks=all, {settings.get('record_bytes_median')} B records",
         "collector / Java producer"),
        ("collector_vs_kafka_python_loop", "collector_kafka_cli_1w", "kafka_python_loop",
         "requests/s (202, acks=all), 1 process, against a plain kafka-python send loop",
         f"kafka-python send loop, 1 process, collector's settings, "
         f"<= {settings.get('loop_window', 0):,} unacked", "collector / send loop"),
    )
    for name, ours, ceiling, metric, baseline_name, meaning in pairs:
        c, x = collector.get(ours), ceilings.get(ceiling)
        if c is None or x is None:
            missing = [n for n in (ours, ceiling) if n in why]
            out.append(entry(name, "not measured", "", None, None, "", "", details={
                "why": "; ".join(f"{n}: {why[n]}" for n in missing) or "not run"}))
            continue
        out.append(entry(name, metric, "req/s", c["ok_rps"], x["records_per_s"], baseline_name,
                         meaning, details=details | {"collector": {
                             k: c.get(k) for k in ("target", "ok_rps", "p50_ms", "p99_ms",
                                                   "non_2xx", "cpu", "every_2xx_in_log")}}))
    return out


def entries_curves(r: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per curve and runtime or store; the tables and plots are rendered from the
    report itself (benchmarks/curves_md.py)."""
    from benchmarks.bench_curves import query_p95

    if (f := failed("curves", r)) is not None:
        return [f]
    out = []
    for stack, x in r.get("freshness", {}).items():
        if (f := failed("curves_freshness", r["freshness"], stack)) is not None:
            out.append(f)
            continue
        rates = ", ".join(f"{st['rate']:,}" for st in x["steps"])
        best = x.get("highest_rate_within_p95_2s")
        out.append(entry(
            f"curves_freshness_{stack}",
            f"highest rate with freshness p95 <= 2 s (of {rates}/s; 0: none)",
            "sheets/s", best or 0, None, "", "", details={"rates": rates, "best": best}))
    for kind, x in r.get("queries", {}).items():
        if (f := failed("curves_queries", r["queries"], kind)) is not None:
            out.append(f)
            continue
        first, last = x["steps"][0], x["steps"][-1]
        worst = max(query_p95(last).values())
        out.append(entry(
            f"curves_queries_{kind}",
            f"slowest query p95 at {last['rows']:,} sheets (leaderboard, status, regional)",
            "ms", worst, max(query_p95(first).values()),
            f"the same at {first['rows']:,} sheets", "largest / smallest store",
            "p95 <= 100 ms", worst <= 100, details={"sizes": [st["rows"] for st in x["steps"]]}))
    for stack, x in r.get("cpu", {}).items():
        if (f := failed("cpu_per_sheet", r["cpu"], stack)) is not None:
            out.append(f)
            continue
        total = (x["product_us_per_sheet"] or 0) + (x["services_us_per_sheet"] or 0)
        out.append(entry(
            f"cpu_per_sheet_{stack}",
            f"CPU µs per sheet, every process (Kafka and ClickHouse included), {x['rate']:,}/s "
            "with a live screen",
            "µs", round(total, 1), x["marginal_us_per_sheet"],
            "the same less the idle stack's CPU (marginal)", "total / marginal",
            details={"product_us_per_sheet": x["product_us_per_sheet"],
                     "services_us_per_sheet": x["services_us_per_sheet"]}))
    return out


ENTRIES = {
    "collector": entries_collector,
    "pipeline": entries_pipeline,
    "sink": entries_sink,
    "queries": entries_queries,
    "e2e": entries_e2e,
    "memory": entries_memory,
    "soak": entries_soak,
    "reports": entries_reports,
    "ceilings": entries_ceilings,
    "curves": entries_curves,
}
