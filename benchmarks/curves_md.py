"""The curves of benchmarks/bench_curves.py in RESULTS.md: a table and a plot (PNG, matplotlib)
per curve, with the run's date, mode and machine."""

# ruff: noqa: E501 - the tables are long f-strings; wrapping them hides what they print
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from benchmarks.bench_curves import FRESH_P95_MS, query_p95

PLOTS = {"freshness": "curve_freshness.png", "queries": "curve_queries.png",
         "cpu": "curve_cpu_per_sheet.png"}
STORE_LABEL = {"chdb": "chDB", "server": "ClickHouse server"}


def _ok(part: dict[str, Any]) -> bool:
    return "failed" not in part and "unavailable" not in part


def _why(part: dict[str, Any]) -> str:
    return str(part.get("failed") or part.get("unavailable"))[:200]


def _cores(cpu: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in cpu.get("cores", {}).items() if k != "harness")


def write_plots(curves: dict[str, Any], plot_dir: Path, when: str = "") -> dict[str, Path]:
    """One PNG per curve measured, its run named under the title; returns curve -> file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot_dir.mkdir(parents=True, exist_ok=True)
    made: dict[str, Path] = {}
    fresh = {k: v for k, v in curves.get("freshness", {}).items() if _ok(v)}
    if fresh:
        fig, ax = plt.subplots(figsize=(7, 4))
        for i, (stack, x) in enumerate(fresh.items()):
            rates = [st["rate"] for st in x["steps"]]
            ax.plot(rates, [st["loaded"]["p95_ms"] for st in x["steps"]], "o-", color=f"C{i}",
                    label=f"{stack} p95")
            ax.plot(rates, [st["loaded"]["p50_ms"] for st in x["steps"]], "o--", color=f"C{i}",
                    alpha=0.6, label=f"{stack} p50")
        ax.axhline(FRESH_P95_MS, color="grey", lw=1, ls=":", label="2 s")
        ax.set(xlabel="sheets/s offered", ylabel="freshness (ms), log", yscale="log",
               title="202 -> counted in the leaderboard")
        ax.legend(fontsize=8)
        fig.suptitle(when, fontsize=8, y=0.02, va="bottom")
        made["freshness"] = plot_dir / PLOTS["freshness"]
        fig.tight_layout()
        fig.savefig(made["freshness"], dpi=110)
        plt.close(fig)
    queries = {k: v for k, v in curves.get("queries", {}).items() if _ok(v) and v.get("steps")}
    if queries:
        fig, axes = plt.subplots(1, len(queries), figsize=(6 * len(queries), 4), squeeze=False)
        for ax, (kind, x) in zip(axes[0], queries.items(), strict=True):
            sizes = [st["rows"] / 1e6 for st in x["steps"]]
            figures = [query_p95(st) for st in x["steps"]]
            for name in figures[0]:
                ax.plot(sizes, [f.get(name) for f in figures], "o-", label=name)
            ax.axhline(100, color="grey", lw=1, ls=":", label="100 ms")
            ax.set(xlabel="million sheets stored", ylabel="p95 (ms)",
                   title=STORE_LABEL.get(kind, kind))
            ax.legend(fontsize=7)
        fig.suptitle(when, fontsize=8, y=0.02, va="bottom")
        made["queries"] = plot_dir / PLOTS["queries"]
        fig.tight_layout()
        fig.savefig(made["queries"], dpi=110)
        plt.close(fig)
    cpu = {k: v for k, v in curves.get("cpu", {}).items() if _ok(v)}
    if cpu:
        fig, ax = plt.subplots(figsize=(7, 4))
        for i, (stack, x) in enumerate(cpu.items()):
            bottom = 0.0
            for role, us in x["us_per_sheet"].items():
                if role == "harness":
                    continue
                ax.bar(i, us, bottom=bottom, label=f"{stack}: {role}")
                bottom += us
        ax.set_xticks(range(len(cpu)), list(cpu))
        ax.set(ylabel="CPU µs per sheet", title="CPU per sheet, end to end (live screen on)")
        ax.legend(fontsize=7)
        fig.suptitle(when, fontsize=8, y=0.02, va="bottom")
        made["cpu"] = plot_dir / PLOTS["cpu"]
        fig.tight_layout()
        fig.savefig(made["cpu"], dpi=110)
        plt.close(fig)
    return made


def section(curves: dict[str, Any], when: str, md_dir: Path, plot_dir: Path | None) -> list[str]:
    """The `## Curves` part of RESULTS.md; writes the plots to `plot_dir` (None: no plots)."""
    smoke = curves.get("settings", {}).get("smoke")
    if smoke:
        when = f"SMOKE RUN, {when} ({smoke})"
    made = write_plots(curves, plot_dir, when) if plot_dir is not None else {}
    m = curves.get("machine", {})
    lines = ["## Curves: how cost grows with the campaign", ""]
    if smoke:
        lines += [f"> **SMOKE RUN: {smoke}.** Not figures to read anything from: they prove "
                  "the code end to end.", ""]
    lines += [
             f"Run: {when}, `python -m benchmarks.bench_curves` (`make bench`; `make bench-quick` "
             f"for quick sizes). Machine: {m.get('cpu_model', '?')}, `nproc` = {m.get('nproc', '?')}, "
             f"{m.get('mem_total_gib', '?')} GiB, load average at the start {' '.join(m.get('loadavg_at_start', []))}.",
             ""]

    def image(name: str) -> None:
        if name in made:
            rel = os.path.relpath(made[name], md_dir)
            lines.extend([f"![{name} curve]({rel})", ""])

    fresh = curves.get("freshness", {})
    if fresh:
        st = curves.get("settings", {})
        lines += ["### Freshness against the offered rate", "",
                  f"Probe every {st.get('probe_every_s')} s, leaderboard polled every "
                  f"{st.get('poll_every_s')} s, {st.get('seconds')} s of load per rate; cores = "
                  "CPU seconds of each process over the load / wall seconds.", ""]
        for stack, x in fresh.items():
            if not _ok(x):
                lines += [f"- {stack}: not measured: {_why(x)}", ""]
                continue
            best = x.get("highest_rate_within_p95_2s")
            lines += [f"**{stack}**: highest rate within p95 ≤ 2 s: "
                      f"**{f'{best:,} sheets/s' if best else 'none of the rates measured'}** "
                      f"(idle p95 {x['idle']['p95_ms']} ms).", "",
                      "| offered /s | achieved /s | p50 ms | p95 ms | probes (not seen) | cores per process | other processes | drain s |",
                      "|---|---|---|---|---|---|---|---|"]
            for step in x["steps"]:
                lo = step["loaded"]
                bound = " (lower bound)" if lo.get("lower_bound") else ""
                lines.append(
                    f"| {step['rate']:,} | {step.get('achieved_rps')} | {lo['p50_ms']} | "
                    f"{lo['p95_ms']}{bound} | {lo['probes']} ({lo['not_visible']}) | "
                    f"{_cores(step['cpu'])} | {step['cpu'].get('foreign_cores')} | {step['drain_s']} |")
            lines.append("")
        image("freshness")
    queries = curves.get("queries", {})
    if queries:
        lines += ["### Query p95 against the sheets stored", "",
                  "One store grown from size to size (1% of each step's sheets under review "
                  "decisions, then live verdicts through insert_judged); p95 in ms, leaderboard = "
                  "its slowest level.", ""]
        for kind, x in queries.items():
            if not _ok(x):
                lines += [f"- {STORE_LABEL.get(kind, kind)}: not measured: {_why(x)}", ""]
                continue
            figures = [query_p95(st) for st in x["steps"]]
            names = list(figures[0]) if figures else []
            lines += [f"**{STORE_LABEL.get(kind, kind)}**", "",
                      "| sheets | fill s | " + " | ".join(names) + " |",
                      "|---|---|" + "---|" * len(names)]
            for st, f in zip(x["steps"], figures, strict=True):
                lines.append(f"| {st['rows']:,} | {st['fill_seconds']} | "
                             + " | ".join(f"{f.get(n)}" for n in names) + " |")
            lines.append("")
        image("queries")
    cpu = curves.get("cpu", {})
    if cpu:
        lines += ["### CPU per sheet, end to end", "",
                  "A fixed load with one display screen on /live; each process's own CPU "
                  "(/proc/<pid>/stat utime+stime, reaped children included) from just before the "
                  "load until every sheet is counted, over the sheets answered 202.", "",
                  "| runtime | sheets | at /s | µs per sheet, per process | product µs/sheet | services µs/sheet | marginal µs/sheet | idle cores (product + services) |",
                  "|---|---|---|---|---|---|---|---|"]
        for stack, x in cpu.items():
            if not _ok(x):
                lines.append(f"| {stack} | not measured: {_why(x)} | | | | | | |")
                continue
            per = ", ".join(f"{k} {v}" for k, v in x["us_per_sheet"].items() if k != "harness")
            lines.append(
                f"| {stack} | {x['sheets']:,} | {x['achieved_rps']} | {per} | "
                f"{x['product_us_per_sheet']} | {x['services_us_per_sheet']} | "
                f"{x['marginal_us_per_sheet']} | {x['idle_product_cores']} + {x['idle_services_cores']} |")
        lines.append("")
        image("cpu")
    return lines
