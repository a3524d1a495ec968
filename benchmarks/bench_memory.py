"""Memory over a soak: RSS of the collector and the worker under steady load, start/end/max/slope.

The stacks of benchmarks.bench_e2e (embedded `serve`: collector, processor and store in one
process; distributed: collector processes, worker, api) take generated sheets at a steady rate
for the soak (10 minutes; 60 s with --quick) while every process's RSS is sampled. Reported per
role: RSS when idle after start-up (the baseline), at the start of the load, at the end, the
maximum, the slope over the second half of the soak (MB/min, after warm-up), and that slope per
million submissions, which is what the campaign's ~10 million sheets would add if it held.

    python -m benchmarks.bench_memory [--quick] [--seconds S] [--only embedded|distributed]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import support as s
from benchmarks.bench_e2e import Stack, distributed_stack, embedded_stack, loaded

RATE = 2000
MB = 1024 * 1024


def _role_summary(
    samples: list[tuple[float, int]], idle: int, rate: float, load_started: float
) -> dict[str, Any]:
    during = [(t, v) for t, v in samples if t >= load_started]
    if not during:
        return {"samples": 0}
    half = during[len(during) // 2 :]
    slope_mb = s.slope_per_min([(t, v / MB) for t, v in half])
    per_min_submissions = rate * 60
    return {
        "idle_mb": round(idle / MB, 1),
        "start_mb": round(during[0][1] / MB, 1),
        "end_mb": round(during[-1][1] / MB, 1),
        "max_mb": round(max(v for _, v in during) / MB, 1),
        "slope_mb_per_min": round(slope_mb, 2),
        "slope_mb_per_million_submissions": round(slope_mb / per_min_submissions * 1e6, 1)
        if per_min_submissions
        else None,
        "ratio_max_vs_idle": s.ratio(max(v for _, v in during), idle) if idle else None,
        "samples": len(during),
        "series_mb": [
            (round(t, 1), round(v / MB, 1)) for t, v in samples[:: max(1, len(samples) // 60)]
        ],
    }


def soak(stack: Stack, bodies: Path, seconds: float, every_s: float) -> dict[str, Any]:
    roles = {role: stack.pids(role) for role in stack.procs if role != "api"}
    if stack.name == "distributed":
        # Per collector process as well as their sum: one process is what a replica costs.
        roles["collector_one_process"] = lambda: stack.procs["collector"].tree()[-1:]
    idle = {role: sum(s.rss_bytes(p) for p in get()) for role, get in roles.items()}
    sampler = s.RssSampler(roles, every_s=every_s).start()
    started = time.monotonic()
    load_started = 0.0

    def mark() -> None:
        nonlocal load_started
        load_started = time.monotonic() - started

    s.log(f"memory {stack.name}: soaking for {seconds:g} s at {RATE}/s")
    fresh, wrk = loaded(stack, bodies, seconds, RATE, on_start=mark)
    sampler.stop()
    stack.check()
    rate = wrk.get("ok_rps", RATE) or RATE
    roles_out = {
        role: _role_summary(sampler.samples[role], idle[role], rate, load_started) for role in roles
    }
    for role, r in roles_out.items():
        s.log(
            f"memory {stack.name} {role}: idle {r.get('idle_mb')} MB, start {r.get('start_mb')}, "
            f"end {r.get('end_mb')}, max {r.get('max_mb')}, "
            f"slope {r.get('slope_mb_per_min')} MB/min"
        )
    return {
        "seconds": seconds,
        "rate": rate,
        "load": wrk,
        "roles": roles_out,
        "freshness_during_soak": fresh,
        "notes": stack.notes,
    }


def run(
    quick: bool, work: Path, seconds: float | None = None, only: str | None = None
) -> dict[str, Any]:
    seconds = seconds or (60.0 if quick else 600.0)
    every_s = 2.0 if quick else 5.0
    bodies = s.write_body_templates(work / "bodies.txt", s.bench_definition(), 4000)
    out: dict[str, Any] = {}
    stacks: dict[str, Callable[[], contextlib.AbstractContextManager[Stack]]] = {
        "embedded": lambda: embedded_stack(work),
        "distributed": lambda: distributed_stack(work),
    }
    for name, make in stacks.items():
        if only and name != only:
            continue
        try:
            with make() as stack:
                out[name] = soak(stack, bodies, seconds, every_s)
        except s.BenchUnavailable as exc:
            out[name] = {"unavailable": str(exc)}
        except Exception as exc:
            s.log(f"memory {name} failed: {exc!r}")
            out[name] = {"failed": repr(exc)[:3000]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--only", choices=["embedded", "distributed"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        text = json.dumps(run(args.quick, Path(tmp), args.seconds, args.only), indent=2)
    s.emit(text, args.out)


if __name__ == "__main__":
    main()
