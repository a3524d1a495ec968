"""Restart time against the size of the campaign: `serve` from process start to its first 202
and to its first verdict, with 0, 1 M, 10 M (and 30 M) sheets already stored.

Each size gets a fresh data dir: the campaign loaded, then `rows` verdicts filled with
INSERT ... SELECT FROM numbers() (benchmarks/bench_queries.fill_sql; the count views fill too),
in a child process (chDB serves one data path per process). Then `survey-ingest serve` starts
and one probe sheet is posted every 10 ms until one is taken (202), and its status is polled
until judged; then it is stopped cleanly (SIGTERM: it writes its judging memory's checkpoint) and
started and timed again. The first start's first-verdict time is also what every restart cost
before judging's catch-up (count repair, review decisions, the anomaly detectors' windows, the
judging memory's walk over every stored verdict) moved behind a serving collector: the process
listened only after it.

    python -m benchmarks.bench_restart [--rows 0,1000000,10000000] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks import support as s

DEFAULT_ROWS = (0, 1_000_000, 10_000_000)
FILL_TIMEOUT_S = 3600.0
START_TIMEOUT_S = 600.0


def fill_child(data_dir: Path, rows: int) -> None:
    """In a child process: the campaign loaded into `data_dir`, then `rows` verdicts stored."""
    from benchmarks.bench_queries import CHUNK, fill_sql
    from runtime.embedded import EmbeddedRuntime
    from schemas.settings import Settings

    async def run() -> None:
        definition = s.bench_definition()
        runtime = EmbeddedRuntime(Settings(data_dir=data_dir, hash_key=s.HASH_KEY))
        try:
            await runtime.define_campaign(definition)
            for start in range(0, rows, CHUNK):
                runtime.store._execute(fill_sql(definition, start, min(CHUNK, rows - start)))
        finally:
            await runtime.stop()

    asyncio.run(run())


def measure(rows: int, workdir: Path) -> dict[str, Any]:
    data = workdir / f"data-{rows}"
    t = time.perf_counter()
    filled = s.Proc(f"fill-{rows}", [s.PY, "-m", "benchmarks.bench_restart", "--fill",
                                     str(data), str(rows)], workdir / f"fill-{rows}.log")
    filled.proc.wait(FILL_TIMEOUT_S)
    if filled.proc.returncode != 0:
        raise RuntimeError(f"fill of {rows:,} rows failed:\n{filled.tail()}")
    fill_s = time.perf_counter() - t
    s.log(f"restart: {rows:,} rows stored in {fill_s:.0f} s")
    first = _start_and_judge(rows, data, workdir, "cold")
    # Stopped cleanly, it wrote its judging memory's checkpoint: the next start reads it.
    again = _start_and_judge(rows, data, workdir, "checkpoint")
    return {"rows": rows, "fill_seconds": round(fill_s, 1),
            "first_202_seconds": first[0], "first_verdict_seconds": first[1],
            "after_clean_stop_first_202_seconds": again[0],
            "after_clean_stop_first_verdict_seconds": again[1]}


def _start_and_judge(rows: int, data: Path, workdir: Path, label: str) -> tuple[float, float]:
    """Seconds from `serve`'s start to its first 202, and to that sheet's verdict."""
    port = s.free_port()
    base = f"http://{s.HOST}:{port}"
    body = s.probe_body(0, s.tag())
    started = time.monotonic()
    serve = s.Proc(f"serve-{rows}-{label}", [*s.CLI, "serve", "--port", str(port),
                                             "--data-dir", str(data)],
                   workdir / f"serve-{rows}-{label}.log", env={"SURVEY_HASH_KEY": s.HASH_KEY})
    try:
        first_202 = _until(lambda: _post(base, body) == 202, serve, started)
        first_verdict = _until(lambda: _status(base, body["submission_id"]) != "received",
                               serve, started)
    finally:
        serve.stop(timeout_s=120)
    return round(first_202, 2), round(first_verdict, 2)


def _until(check: Any, proc: s.Proc, started: float) -> float:
    deadline = started + START_TIMEOUT_S
    while time.monotonic() < deadline:
        proc.check()
        if check():
            return time.monotonic() - started
        time.sleep(0.01)
    raise TimeoutError(f"{proc.name}: not within {START_TIMEOUT_S:.0f} s\n{proc.tail()}")


def _post(base: str, body: dict[str, Any]) -> int:
    try:
        return httpx.post(f"{base}/v1/submissions", json=body, timeout=2).status_code
    except httpx.HTTPError:
        return 0


def _status(base: str, sid: str) -> str:
    try:
        r = httpx.get(f"{base}/v1/campaigns/2026/submissions/{sid}", timeout=2)
    except httpx.HTTPError:
        return "received"
    return str(r.json().get("status", "received")) if r.status_code == 200 else "received"


def run(sizes: tuple[int, ...] = DEFAULT_ROWS) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-restart-") as tmp:
        return {"serve": [measure(rows, Path(tmp)) for rows in sizes]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(str(n) for n in DEFAULT_ROWS),
                        help="comma-separated store sizes")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--fill", nargs=2, metavar=("DATA_DIR", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fill:
        fill_child(Path(args.fill[0]), int(args.fill[1]))
        return
    sizes = tuple(int(n) for n in args.rows.split(","))
    s.emit(json.dumps(run(sizes), indent=2), args.out)


if __name__ == "__main__":
    main()
