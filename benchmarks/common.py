"""The constants and small helpers every benchmark module shares: paths, the ports and
names it uses, bounded waits, percentiles and ratios.

Everything here talks to 127.0.0.1 only, and every wait is bounded: a benchmark that cannot get
what it needs fails with a message instead of hanging.
"""

from __future__ import annotations

import math
import os
import socket
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "benchmarks"
RESULTS_DIR = BENCH_DIR / "results"
WRK_DIR = BENCH_DIR / "wrk"
PY = sys.executable
CLI = [PY, "-m", "commands.cli"]
EXAMPLE_CAMPAIGN = ROOT / "simulation" / "examples" / "campaign.yaml"
HOST = "127.0.0.1"
ADMIN_TOKEN = "bench-admin-token"
HASH_KEY = "bench-hash-key"
# The unit the freshness probes are credited to: its valid count tells which probes are visible.
PROBE_UNIT = "bench-probe"
PROBE_LINK = "BenchProbe1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Another process using more than this much CPU during a measurement marks it disturbed.
DISTURBED_CORES = 0.25


class BenchUnavailable(Exception):
    """A benchmark cannot run here (a service or tool is missing); recorded, not fatal."""


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def emit(text: str, out: Path | None) -> None:
    """A benchmark's JSON result: to --out when given, else to stdout."""
    if out:
        out.write_text(text)
    else:
        print(text)


def tag() -> str:
    return uuid.uuid4().hex[:8]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_until(
    what: str, check: Callable[[], bool], timeout_s: float, every_s: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if check():
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(every_s)


def http_status(url: str, timeout_s: float = 2.0) -> int:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or HOST, parts.port, timeout=timeout_s)
    try:
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
        return conn.getresponse().status
    finally:
        conn.close()


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    k = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary_ms(values_s: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values_s),
        "p50_ms": round(percentile(values_s, 50) * 1e3, 2),
        "p95_ms": round(percentile(values_s, 95) * 1e3, 2),
        "p99_ms": round(percentile(values_s, 99) * 1e3, 2),
        "max_ms": round(max(values_s) * 1e3, 2) if values_s else math.nan,
        "mean_ms": round(statistics.fmean(values_s) * 1e3, 2) if values_s else math.nan,
    }


def ratio(a: float, b: float, digits: int = 3) -> float:
    return round(a / b, digits) if b else math.nan
