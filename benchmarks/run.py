"""`make bench`: run every measurement; write benchmarks/results/latest.json and RESULTS.md.

    python -m benchmarks.run                                  # everything, full length (~3 h)
    python -m benchmarks.run --only collector,pipeline --quick
    python -m benchmarks.run --quick --latest benchmarks/results/quick.json   # make bench-quick
    python -m benchmarks.run --only curves --use-report curves=/tmp/c.json --latest /tmp/l.json

Benchmarks: collector, ceilings, pipeline, sink, queries, e2e, memory, soak, curves. Each runs in its own process (chDB
keeps one data directory per process, and a crash in one must not lose the others) and reports
JSON; this module turns every report into entries of one shape,

    {"name", "metric", "unit", "figure", "baseline", "baseline_name", "ratio", "ratio_meaning",
     "floor", "meets_floor", "mode", "run_at", "details"}

A run of some benchmarks replaces only their entries in latest.json; the others are kept, with
the date and mode of the run that made them. RESULTS.md is rendered from latest.json plus the
hand-written benchmarks/analysis.md (profiles, what was tried, what limits the design).
Reports become entries in benchmarks/entries.py; RESULTS.md is rendered by benchmarks/results_md.py.
"""

# ruff: noqa: E501 - the report is long f-strings; wrapping them hides what they print
from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import support as s
from benchmarks.entries import ENTRIES
from benchmarks.entry_shape import entry
from benchmarks.results_md import REPORT_DATE, fmt, render

ALL = ("collector", "ceilings", "pipeline", "sink", "queries", "e2e", "memory", "soak",
       "curves", "reports")
# `reports` (an hour at 10 M sheets) runs only when asked: `make bench-reports`.
DEFAULT = tuple(b for b in ALL if b != "reports")
LATEST = s.RESULTS_DIR / "latest.json"
RESULTS_MD = s.BENCH_DIR / "RESULTS.md"
# Upper bounds per benchmark (seconds), full / quick: a stuck benchmark is killed and reported.
TIMEOUTS = {
    "collector": (1800, 600),
    "ceilings": (1200, 600),
    "pipeline": (1500, 600),
    "sink": (600, 300),
    "queries": (2700, 900),  # the 10M fill feeds four views
    "e2e": (900, 400),
    "memory": (2100, 600),
    "soak": (1500, 400),
    "curves": (9000, 600),  # full: the 30 M fills and scans of both stores are most of it
    "reports": (7200, 900),
}


# `make bench-quick` must stay within this (issue 20); run.py says when it did not.
QUICK_BUDGET_S = 15 * 60


def run_one(name: str, quick: bool, work: Path, report: Path | None = None) -> dict[str, Any]:
    """Runs one benchmark in its own process; or, with `report`, reads a report it already
    wrote (a run made by hand, e.g. at other sizes)."""
    if report is not None:
        stored: dict[str, Any] = json.loads(report.read_text())
        return stored
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
    result: dict[str, Any] = json.loads(out.read_text())
    result["_seconds"] = round(elapsed)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(ALL)}")
    parser.add_argument("--quick", action="store_true", help="short runs (minutes, not ~45)")
    parser.add_argument(
        "--latest", type=Path, default=LATEST,
        help="the results file (default benchmarks/results/latest.json); another one gets its "
        "markdown beside it (same name, .md) and its plots in NAME-plots/ beside it",
    )
    parser.add_argument(
        "--use-report", action="append", default=[], metavar="NAME=FILE",
        help="take benchmark NAME's report from FILE instead of running it",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="rebuild the entries and RESULTS.md from latest.json's stored reports, measuring nothing",
    )
    args = parser.parse_args()
    latest_path = args.latest
    results_md = RESULTS_MD if latest_path.resolve() == LATEST.resolve() else latest_path.with_suffix(".md")
    # Another results file keeps its plots apart: a quick run never overwrites the full run's.
    default = latest_path.resolve() == LATEST.resolve()
    plot_dir = latest_path.parent if default else latest_path.parent / f"{latest_path.stem}-plots"
    reports = {k: Path(v) for k, v in (x.split("=", 1) for x in args.use_report)}
    chosen = [b.strip() for b in args.only.split(",")] if args.only else list(DEFAULT)
    unknown = set(chosen) - set(ALL)
    if unknown:
        raise SystemExit(f"unknown benchmarks: {sorted(unknown)}; choose from {', '.join(ALL)}")
    latest_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    latest: dict[str, Any] = json.loads(latest_path.read_text()) if latest_path.exists() else {}
    if not args.render_only:
        machine = s.machine()
        run_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        mode = "quick" if args.quick else "full"
        kept = [e for e in latest.get("benchmarks", []) if e.get("benchmark") not in chosen]
        fresh: list[dict[str, Any]] = []
        raw: dict[str, Any] = latest.get("raw", {})
        with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
            for name in chosen:
                report = run_one(name, args.quick, Path(tmp), reports.get(name))
                raw[name] = report
                try:
                    made = ENTRIES[name](report)
                except Exception as exc:
                    made = [
                        entry(
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
                on_disk = json.loads(latest_path.read_text()) if latest_path.exists() else {}
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
                tmp_path = latest_path.with_suffix(".json.tmp")
                tmp_path.write_text(json.dumps(latest, indent=2, ensure_ascii=False))
                tmp_path.replace(latest_path)
                results_md.write_text(render(latest, results_md.parent, plot_dir))
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
        latest_path.write_text(json.dumps(latest, indent=2, ensure_ascii=False))
    results_md.write_text(render(latest, results_md.parent, plot_dir))
    if latest.get("raw", {}).get("curves") and latest_path.resolve() == LATEST.resolve():
        from benchmarks import capacity

        capacity.write(latest)
    for e in latest.get("benchmarks", []):
        print(
            f"{e['name']:45s} {fmt(e['figure'], e['unit']):>14} {e['unit'] if e['unit'] not in ('ms', 'MB') else '':8s} "
            f"ratio {fmt(e['ratio']):>8}  floor {e['floor'] or '-'}: "
            f"{ {True: 'yes', False: 'NO', None: '-'}[e.get('meets_floor')] }"
        )
    if not args.render_only:
        took = time.monotonic() - started
        over = args.quick and not args.only and took > QUICK_BUDGET_S
        each = ", ".join(
            f"{n} {latest['raw'][n]['_seconds'] / 60:.1f}"
            for n in chosen
            if isinstance(latest.get("raw", {}).get(n), dict) and "_seconds" in latest["raw"][n]
        )
        print(f"took {took / 60:.1f} min ({each or 'nothing run'}; min)" + (
            f": OVER the quick budget of {QUICK_BUDGET_S // 60} min" if over else ""))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
