"""What every benchmark needs, in one namespace (`from benchmarks import support as s`): the
shared constants and helpers (common.py), processes and CPU/memory accounting (processes.py), the
services (services.py), the campaign and its data (campaign_data.py), and wrk (here).

Everything here talks to 127.0.0.1 only, and every wait is bounded: a benchmark that cannot get
what it needs fails with a message instead of hanging.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from benchmarks.campaign_data import (
    ID_PLACEHOLDER,
    bench_definition,
    definition_json,
    judged_rows,
    probe_body,
    received_record,
    registry_for,
    sheet_bodies,
    unique_bodies,
    write_body_templates,
)
from benchmarks.common import (
    ADMIN_TOKEN,
    BENCH_DIR,
    CLI,
    CLK_TCK,
    DISTURBED_CORES,
    EXAMPLE_CAMPAIGN,
    HASH_KEY,
    HOST,
    PROBE_LINK,
    PROBE_UNIT,
    PY,
    RESULTS_DIR,
    ROOT,
    WRK_DIR,
    BenchUnavailable,
    emit,
    free_port,
    http_status,
    log,
    percentile,
    ratio,
    summary_ms,
    tag,
    wait_until,
)
from benchmarks.processes import (
    CpuMeter,
    Proc,
    RssSampler,
    Stopwatch,
    busy_cpu_seconds,
    cpu_seconds,
    descendants,
    machine,
    rss_bytes,
    slope_per_min,
    stopping,
)
from benchmarks.services import (
    SERVICE_WAIT_S,
    clickhouse_base,
    clickhouse_client,
    clickhouse_pids,
    delete_topics,
    drop_database,
    kafka_bootstrap,
    kafka_pids,
    kafka_tools_classpath,
    topic_end,
)

__all__ = [
    "ADMIN_TOKEN",
    "BENCH_DIR",
    "CLI",
    "CLK_TCK",
    "DISTURBED_CORES",
    "EXAMPLE_CAMPAIGN",
    "HASH_KEY",
    "HOST",
    "ID_PLACEHOLDER",
    "PROBE_LINK",
    "PROBE_UNIT",
    "PY",
    "RESULTS_DIR",
    "ROOT",
    "SERVICE_WAIT_S",
    "WRK_DIR",
    "WRK_JSON",
    "BenchUnavailable",
    "CpuMeter",
    "Proc",
    "RssSampler",
    "Stopwatch",
    "bench_definition",
    "busy_cpu_seconds",
    "clickhouse_base",
    "clickhouse_client",
    "clickhouse_pids",
    "cpu_seconds",
    "definition_json",
    "delete_topics",
    "descendants",
    "drop_database",
    "emit",
    "free_port",
    "have_wrk",
    "http_status",
    "judged_rows",
    "kafka_bootstrap",
    "kafka_pids",
    "kafka_tools_classpath",
    "log",
    "machine",
    "percentile",
    "probe_body",
    "ratio",
    "received_record",
    "registry_for",
    "rss_bytes",
    "run_wrk",
    "sheet_bodies",
    "slope_per_min",
    "stopping",
    "summary_ms",
    "tag",
    "topic_end",
    "unique_bodies",
    "wait_until",
    "write_body_templates",
]

# -- wrk -----------------------------------------------------------------------------------------

WRK_JSON = re.compile(r"^WRK_JSON (\{.*\})$", re.MULTILINE)


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    url: str,
    *,
    threads: int,
    connections: int,
    seconds: float,
    script: Path,
    env: dict[str, str] | None = None,
    timeout_ms: int = 10_000,
) -> dict[str, Any]:
    """Runs wrk with a script that prints a WRK_JSON line; returns that line, plus req/s and
    the CPU seconds wrk used (`cpu_s`, from its rusage: wrk is gone before anyone could read
    /proc for it)."""
    import resource

    if not have_wrk():
        raise BenchUnavailable("wrk is not installed (apt-get install -y wrk)")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    args = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        f"{max(1, timeout_ms // 1000)}s",
        "-s",
        str(script),
        url,
    ]
    proc = subprocess.Popen(
        args,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=WRK_DIR,
    )
    try:
        out, _ = proc.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise RuntimeError(f"wrk did not finish: {out[-2000:]}") from None
    match = WRK_JSON.search(out)
    if proc.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {out[-2000:]}")
    result: dict[str, Any] = json.loads(match.group(1))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["cpu_s"] = round(
        (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 3
    )
    duration = result["duration_us"] / 1e6
    ok = result["requests"] - result["non_2xx"]
    result["ok"] = ok
    result["rps"] = round(result["requests"] / duration, 1) if duration else 0.0
    result["ok_rps"] = round(ok / duration, 1) if duration else 0.0
    return result
