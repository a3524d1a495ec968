"""The curves' report (benchmarks/bench_curves.py) as RESULTS.md shows it and docs/capacity.md
computes from it: a small fabricated report, no stack and no store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks import capacity
from benchmarks.entries import entries_curves
from benchmarks.results_md import render


def _fresh(rate: int, p95: float, achieved: float, lower: bool = False) -> dict[str, Any]:
    return {"rate": rate, "achieved_rps": achieved, "non_2xx": 0, "drain_s": 0.6,
            "loaded": {"p50_ms": p95 / 2, "p95_ms": p95, "probes": 40, "not_visible": 0,
                       "lower_bound": lower},
            "cpu": {"cores": {"serve": 0.4, "wrk": 0.05, "harness": 0.01},
                    "foreign_cores": 0.02}}


def _step(rows: int, ms: float) -> dict[str, Any]:
    summary = {"p50_ms": ms / 2, "p95_ms": ms}
    return {"rows": rows, "fill_seconds": 3.0, "leaderboard_unit": summary,
            "leaderboard_province": summary, "leaderboard_work_region": summary,
            "status": {"p50_ms": 1.0, "p95_ms": 2.0},
            "regional": {"day": {"figure": {"p95_ms": ms * 2}}}}


def _cpu(product: float, services: float) -> dict[str, Any]:
    return {"rate": 500, "sheets": 5000, "achieved_rps": 499.8, "us_per_sheet": {
        "collector": product / 2, "worker": product / 2, "clickhouse": services},
        "product_us_per_sheet": product, "services_us_per_sheet": services,
        "marginal_us_per_sheet": product + services - 100, "idle_product_cores": 0.05,
        "idle_services_cores": 0.1}


REPORT: dict[str, Any] = {
    "settings": {"probe_every_s": 0.25, "poll_every_s": 0.05, "seconds": 10.0},
    "machine": {"cpu_model": "Test CPU", "nproc": 2, "mem_total_gib": 4.0,
                "loadavg_at_start": ["0.1", "0.2", "0.3"]},
    "freshness": {
        "embedded": {"idle": {"p95_ms": 300.0}, "highest_rate_within_p95_2s": 500,
                     "steps": [_fresh(250, 400.0, 250.0), _fresh(500, 900.0, 499.0),
                               _fresh(1000, 5000.0, 998.0)]},
        "distributed": {"failed": "RuntimeError('kafka down')"},
    },
    "queries": {"chdb": {"steps": [_step(100_000, 10.0), _step(500_000, 30.0)]}},
    "cpu": {"embedded": _cpu(800.0, 0.0), "distributed": _cpu(1500.0, 700.0)},
}


def _latest() -> dict[str, Any]:
    made = entries_curves(REPORT)
    for e in made:
        e |= {"benchmark": "curves", "mode": "quick", "run_at": "2026-12-03T20:00:00+00:00"}
    machine = REPORT["machine"] | {"kernel": "6", "python": "3.11", "free_h": "-"}
    return {"machine": machine, "benchmarks": made, "raw": {"curves": REPORT}}


def test_entries_name_the_highest_rate_held_and_the_failure() -> None:
    made = {e["name"]: e for e in entries_curves(REPORT)}
    assert made["curves_freshness_embedded"]["figure"] == 500
    assert made["curves_freshness_distributed"]["figure"] is None  # not measured, with why
    assert "kafka down" in made["curves_freshness_distributed"]["details"]["why"]
    assert made["curves_queries_chdb"]["figure"] == 60.0  # the regional query, 2 x 30 ms
    assert made["cpu_per_sheet_distributed"]["figure"] == 2200.0


def test_results_md_shows_each_curve_as_a_table_and_a_plot(tmp_path: Path) -> None:
    plots = tmp_path / "results"
    text = render(_latest(), md_dir=tmp_path, plot_dir=plots)
    assert "## Curves: how cost grows with the campaign" in text
    assert "quick run of 2026-12-03T20:00 UTC" in text and "Test CPU" in text
    assert "highest rate within p95 ≤ 2 s: **500 sheets/s**" in text
    assert "| 1,000 | 998.0 | 2500.0 | 5000.0 |" in text
    assert "| 500,000 | 3.0 | 30.0 | 2.0 | 60.0 |" in text
    assert "distributed: not measured" in text
    for name in ("curve_freshness.png", "curve_queries.png", "curve_cpu_per_sheet.png"):
        assert f"](results/{name})" in text
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_capacity_shows_the_arithmetic_and_flags_a_quick_run() -> None:
    text = capacity.render(_latest())
    assert "QUICK RUN" in text
    assert "mean 10,800,000 / (10 × 86,400 s) = **12.5 sheets/s**" in text
    assert "20 × 12.5 = **250 sheets/s**" in text
    # distributed: idle 0.15 cores + 250/s x 2100 us = 0.15 + 0.525 = 0.675 busy, 1.35 planned
    assert "0.150 + 250 sheets/s × 2100.0 µs = 0.150 + 0.525 = **0.68 cores**" in text
    assert "2-core machines: ⌈1.35 / 2⌉ = **1**" in text
    assert "**fits one machine**" in text  # embedded held 500/s >= the 250/s peak


def test_capacity_rewrites_only_its_own_section(tmp_path: Path) -> None:
    page = tmp_path / "capacity.md"
    page.write_text("# Capacity model\n\nWritten by hand.\n")
    capacity.write(_latest(), page)
    capacity.write(_latest(), page)  # a second run replaces the section, never appends another
    text = page.read_text()
    assert text.startswith("# Capacity model\n\nWritten by hand.\n\n" + capacity.BEGIN)
    assert text.count(capacity.BEGIN) == 1 and text.rstrip().endswith(capacity.END)
