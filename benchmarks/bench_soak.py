"""Soak: the embedded `survey-ingest serve` at half its measured capacity for 10 minutes.

What must hold over the whole run: no error answer (every request a 202), RSS flat (sampled every
5 s: idle after start-up, start, end, max, least-squares slope over the second half and over the
whole load, in MB/min), and exact counts at the end: every 202 counted once. The load generator
(wrk, benchmarks/wrk/soak.lua) posts generated sheets from templates whose validity the generator
decided (simulation.generator, no flaw that depends on history), each with a fresh
submission_id and device_id, and counts the 202s per template; the store's totals and the unit
leaderboard must then equal what those 202s make, exactly.

Capacity is the latest `collector_embedded` figure in benchmarks/results/latest.json (the
embedded collector's req/s, measured by benchmarks.bench_collector on this machine), or measured
here for 15 s when there is none.

    python -m benchmarks.bench_soak [--quick] [--seconds S] [--rate R] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from benchmarks import support as s
from benchmarks.bench_e2e import Stack, embedded_stack

MB = 1024 * 1024
CONNECTIONS = 64
THREADS = 1
IDLE_S = 15.0  # RSS sampled idle before the load: the baseline
DRAIN_TIMEOUT_S = 600.0  # every 202 judged and counted within this after the load (bounded)
# Flaws whose verdict depends on earlier sheets (a resend, a reused device): with a fresh id and
# device per request they would not be flaws any more, so the templates leave them out.
_HISTORY_FLAWS = ("identical_resend", "conflicting_resend", "reused_device")


def capacity(work: Path, stack: Stack, bodies: Path) -> tuple[float, str]:
    """The embedded collector's req/s: the latest full measurement, else 15 s measured here."""
    latest = s.RESULTS_DIR / "latest.json"
    with contextlib.suppress(OSError, ValueError, KeyError):
        for entry in json.loads(latest.read_text())["benchmarks"]:
            if entry["name"] == "collector_embedded" and entry.get("figure"):
                return float(entry["figure"]), (
                    f"benchmarks/results/latest.json collector_embedded "
                    f"({entry.get('mode')} run at {entry.get('run_at')})")
    s.log("soak: no collector_embedded figure in latest.json; measuring capacity for 15 s")
    out = s.run_wrk(stack.post_url, threads=2, connections=128, seconds=15,
                    script=s.WRK_DIR / "submit.lua", env={"BENCH_BODIES": str(bodies)})
    return float(out["ok_rps"]), "measured here: wrk unpaced for 15 s, 2 threads, 128 connections"


def templates(definition: Any, path: Path, n: int = 2000, seed: int = 23) -> list[dict[str, Any]]:
    """n sheet templates (one per line of `path`), each with the generator's verdict: valid or
    which flaw. Template k (from 1) gets submission_id "<token>-t<k>" and device_id "d<token>"."""
    from simulation.generator import DEFAULT_FLAW_WEIGHTS, SheetFactory

    weights = {k: w for k, w in DEFAULT_FLAW_WEIGHTS.items() if k not in _HISTORY_FLAWS}
    factory = SheetFactory(definition, valid_share=0.9, flaw_weights=weights)
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    units = {lk.code: lk.unit for lk in definition.links}
    out: list[dict[str, Any]] = []
    lines: list[str] = []
    while len(out) < n:
        made = factory.make(rng, now)
        body = made.body
        if body.get("link_code") == s.PROBE_LINK:
            continue
        k = len(out) + 1
        body["submission_id"] = f"{s.ID_PLACEHOLDER}-t{k}"
        if body.get("device_id"):
            body["device_id"] = "d" + s.ID_PLACEHOLDER
        out.append({"valid": made.flaw is None, "flaw": made.flaw,
                    "unit": units.get(body["link_code"], "")})
        lines.append(json.dumps(body, ensure_ascii=False, separators=(",", ":")))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def _get(url: str, path: str) -> Any:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or s.HOST, parts.port, timeout=30)
    try:
        # /counts needs a token (CONTRACT §7); the bench stack runs with the admin token.
        conn.request("GET", path, headers={"authorization": f"Bearer {s.ADMIN_TOKEN}"})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:300]!r}")
        return json.loads(body)
    finally:
        conn.close()


def store_totals(stack: Stack) -> dict[str, int]:
    rows = _get(stack.read_url, "/v1/campaigns/2026/counts")["rows"]
    row = rows[0] if rows else {}
    return {k: int(row.get(k) or 0) for k in ("valid", "rejected", "test")}


def unit_valid(stack: Stack) -> dict[str, int]:
    rows = _get(stack.read_url, "/v1/campaigns/2026/leaderboard?level=unit&limit=1000")["rows"]
    return {r["id"]: int(r["valid"]) for r in rows if int(r["valid"])}


def _rss_summary(samples: list[tuple[float, int]], idle: int, load: tuple[float, float]
                 ) -> dict[str, Any]:
    during = [(t, v) for t, v in samples if load[0] <= t <= load[1]]
    if len(during) < 3:
        return {"samples": len(during)}
    half = during[len(during) // 2 :]
    mb = [(t, v / MB) for t, v in during]
    peak = max(v for _, v in during)
    return {
        "idle_mb": round(idle / MB, 1),
        "start_mb": round(during[0][1] / MB, 1),
        "end_mb": round(during[-1][1] / MB, 1),
        "max_mb": round(peak / MB, 1),
        "after_drain_mb": round(samples[-1][1] / MB, 1),
        "slope_mb_per_min_second_half": round(s.slope_per_min([(t, v / MB) for t, v in half]), 3),
        "slope_mb_per_min_whole_load": round(s.slope_per_min(mb), 3),
        "ratio_max_vs_idle": s.ratio(peak, idle) if idle else None,
        "samples": len(during),
        "series_mb": [(round(t, 1), round(v / MB, 1))
                      for t, v in samples[:: max(1, len(samples) // 80)]],
    }


def soak(stack: Stack, work: Path, seconds: float, rate: float | None, every_s: float
         ) -> dict[str, Any]:
    from benchmarks.support import bench_definition

    bodies = work / "soak-bodies.txt"
    marks = templates(bench_definition(), bodies)
    cap, cap_source = capacity(work, stack, bodies)
    target = round(rate or cap / 2)
    before = store_totals(stack)
    roles: dict[str, Callable[[], Iterable[int]]] = {"serve": stack.pids("serve")}
    sampler = s.RssSampler(roles, every_s=every_s).start()
    time.sleep(IDLE_S)
    idle_samples = sampler.samples["serve"]
    idle = idle_samples[-1][1] if idle_samples else 0
    s.log(f"soak: {seconds:g} s at {target}/s (capacity {cap:,.0f} req/s: {cap_source}); "
          f"idle RSS {idle / MB:.0f} MB")
    meter = s.CpuMeter(roles).__enter__()
    load_from = time.monotonic() - sampler._t0
    wrk = s.run_wrk(
        stack.post_url, threads=THREADS, connections=CONNECTIONS, seconds=seconds + 15,
        script=s.WRK_DIR / "soak.lua",
        env={"BENCH_BODIES": str(bodies), "BENCH_RATE": str(target),
             "BENCH_THREADS": str(THREADS), "BENCH_SECONDS": str(seconds)},
    )
    load_to = time.monotonic() - sampler._t0
    cpu = meter.stop({"wrk": wrk.get("cpu_s", 0.0)})
    stack.check()
    ok = {int(k): int(v) for k, v in wrk.pop("ok_by_template").items()}
    taken = sum(ok.values())
    expected_valid = sum(n for k, n in ok.items() if marks[k - 1]["valid"])
    expected_units: Counter[str] = Counter()
    for k, n in ok.items():
        if marks[k - 1]["valid"]:
            expected_units[marks[k - 1]["unit"]] += n
    s.log(f"soak: {taken:,} sheets taken ({taken / seconds:,.0f}/s), {wrk['non_2xx']} non-2xx; "
          f"waiting until all are counted")

    drained_in = None
    started = time.monotonic()
    deadline = started + DRAIN_TIMEOUT_S
    totals = store_totals(stack)
    while sum(totals.values()) - sum(before.values()) < taken and time.monotonic() < deadline:
        time.sleep(1.0)
        totals = store_totals(stack)
    if sum(totals.values()) - sum(before.values()) >= taken:
        drained_in = round(time.monotonic() - started, 1)
    time.sleep(2.0)  # a late duplicate would show now
    totals = store_totals(stack)
    sampler.stop()
    got = {k: totals[k] - before[k] for k in totals}
    units = unit_valid(stack)
    errors = {k: wrk[k] for k in ("non_2xx", "connect_errors", "read_errors", "write_errors",
                                  "timeouts")}
    exact = {
        "sheets_taken_202": taken,
        "sheets_sent": wrk.get("sent"),
        "expected_valid": expected_valid,
        "expected_rejected": taken - expected_valid,
        "store_valid": got["valid"],
        "store_rejected": got["rejected"],
        "store_test": got["test"],
        "store_total": sum(got.values()),
        "units_match": units == {u: n for u, n in expected_units.items() if n},
        "counted_once": got["valid"] == expected_valid and got["rejected"] == taken - expected_valid
        and got["test"] == 0,
        "drained_in_s": drained_in,
    }
    rss = _rss_summary(sampler.samples["serve"], idle, (load_from, load_to))
    served = stack.procs["serve"].tail(50_000_000)
    log_errors = [line[:300] for line in served.splitlines()
                  if "Traceback" in line or " ERROR " in line or " CRITICAL " in line]
    s.log(f"soak: store valid {got['valid']:,} (expected {expected_valid:,}), rejected "
          f"{got['rejected']:,} (expected {taken - expected_valid:,}); units match "
          f"{exact['units_match']}; RSS idle {rss.get('idle_mb')} MB, max {rss.get('max_mb')} MB, "
          f"slope (2nd half) {rss.get('slope_mb_per_min_second_half')} MB/min")
    return {
        "seconds": seconds,
        "target_rate": target,
        # 202s per second of the paced window (wrk's own ok_rps also counts its idle tail).
        "achieved_rps": round(taken / seconds, 1),
        "capacity_rps": cap,
        "capacity_source": cap_source,
        "load": wrk,
        "errors": errors,
        "no_errors": not any(errors.values()),
        # What `serve` itself logged as an error or a traceback over the run (first ones kept).
        "serve_log_errors": len(log_errors),
        "serve_log_error_lines": log_errors[:10],
        "exact": exact,
        "rss": rss,
        "cpu": cpu,
        "templates": {"n": len(marks), "valid_share": round(
            sum(m["valid"] for m in marks) / len(marks), 3),
            "flaws": dict(Counter(m["flaw"] for m in marks if m["flaw"]))},
    }


def run(quick: bool, work: Path, seconds: float | None = None, rate: float | None = None
        ) -> dict[str, Any]:
    if not s.have_wrk():
        return {"unavailable": "wrk is not installed (apt-get install -y wrk)"}
    seconds = seconds or (60.0 if quick else 600.0)
    every_s = 2.0 if quick else 5.0
    try:
        with embedded_stack(work) as stack:
            return {"embedded": soak(stack, work, seconds, rate, every_s)}
    except Exception as exc:
        s.log(f"soak failed: {exc!r}")
        return {"embedded": {"failed": repr(exc)[:3000]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 s instead of 600 s")
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--rate", type=float, help="sheets/s (default: half the capacity)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        text = json.dumps(run(args.quick, Path(tmp), args.seconds, args.rate), indent=2)
    s.emit(text, args.out)


if __name__ == "__main__":
    main()
