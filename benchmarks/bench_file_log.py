"""Micro-benchmark of the embedded log's append path: appends/s and latency by concurrency.

    python -m benchmarks.bench_file_log [--seconds 3] [--value-bytes 1024] [--dir PATH] [--no-fsync]

Each appender awaits its append, then appends again (as collector requests do), on one event
loop; latency is from the call to the return, i.e. until the record is on disk. Use --dir on the
disk you care about: the default temporary directory may be a tmpfs, where fsync is free.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from eventlog.file_log import FileLog


async def run(directory: Path, concurrency: int, seconds: float, value: bytes, fsync: bool) -> str:
    latencies: list[float] = []
    with FileLog(directory, fsync=fsync) as log:
        stop = time.perf_counter() + seconds

        async def appender(n: int) -> None:
            key = b"bench-%d" % n
            while time.perf_counter() < stop:
                started = time.perf_counter()
                await log.append(key, value)
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(appender(n) for n in range(concurrency)))
        elapsed = time.perf_counter() - began
        stats = log.stats
    quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
    per_fsync = stats.records / stats.fsyncs if stats.fsyncs else float("nan")
    return (
        f"{concurrency:>11} {len(latencies) / elapsed:>11,.0f} {quantiles[49] * 1e3:>8.3f} "
        f"{quantiles[98] * 1e3:>8.3f} {stats.fsyncs:>8} {per_fsync:>12.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--value-bytes", type=int, default=1024)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 64, 512])
    parser.add_argument("--dir", type=Path, default=None, help="where to put the logs")
    parser.add_argument("--no-fsync", action="store_true")
    args = parser.parse_args()
    value = os.urandom(args.value_bytes)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-file-log-") as tmp:
        fsync = "off" if args.no_fsync else "on"
        print(
            f"logs in {tmp}, {args.value_bytes}-byte values, fsync {fsync}, "
            f"{args.seconds:g} s per row"
        )
        print(
            f"{'concurrency':>11} {'appends/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'fsyncs':>8} "
            f"{'records/fsync':>12}"
        )
        for concurrency in args.concurrency:
            directory = Path(tmp) / f"c{concurrency}"
            print(
                asyncio.run(run(directory, concurrency, args.seconds, value, not args.no_fsync)),
                flush=True,
            )


if __name__ == "__main__":
    main()
