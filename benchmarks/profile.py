"""Profile a collector target under wrk with py-spy, and summarise where the time goes.

    python -m benchmarks.profile collector_kafka|collector_embedded|noop [--seconds S] [--workers N]
    python -m benchmarks.profile summary FILE.collapsed      # summarise an existing profile

py-spy records every process of the target (--subprocesses) in collapsed-stack form; the summary
lists the functions with the most samples on their own (self) and in their subtree (inclusive).
py-spy is looked up on PATH, then in /tmp/benchtools/bin (pip install py-spy into any venv).
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks import support as s
from benchmarks.bench_collector import WRK_CONNECTIONS, WRK_THREADS, Setup


def py_spy() -> str:
    found = shutil.which("py-spy") or "/tmp/benchtools/bin/py-spy"
    if not Path(found).exists():
        raise s.BenchUnavailable("py-spy not found (pip install py-spy)")
    return found


def spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[str]:
    """py-spy record of `pid` and its children for `seconds`, collapsed stacks into `out`."""
    return subprocess.Popen(
        [
            py_spy(),
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--duration",
            str(int(seconds)),
            "--rate",
            "200",
            "--format",
            "raw",
            "--nonblocking",
            "-o",
            str(out),
            *os.environ.get("BENCH_PYSPY_ARGS", "").split(),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def summarise(path: Path, top: int = 25) -> str:
    self_counts: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        self_counts[_short(frames[-1])] += n
        for f in {_short(f) for f in frames}:
            incl[f] += n
    out = [f"{total} samples", "", "self:"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in self_counts.most_common(top)]
    out += ["", "inclusive:"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in incl.most_common(top)]
    return "\n".join(out)


def _short(frame: str) -> str:
    # "func (path/to/file.py:123)" -> "func (file.py)"
    name, _, where = frame.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0]
    parts = file.split("/")
    return f"{name} ({'/'.join(parts[-2:])})"


def record(target_name: str, seconds: float, workers: int, out_dir: Path, rate: int = 0) -> Path:
    setup = Setup(out_dir, quick=True)
    targets = {
        "noop": setup.noop(workers),
        "collector_embedded": setup.embedded(),
        "collector_kafka": setup.kafka_factory(workers),
        "naive": setup.naive(workers),
    }
    target = targets[target_name]
    if target.needs_kafka:
        setup.bootstrap()
    collapsed = out_dir / f"{target_name}.collapsed"
    env = {"BENCH_BODIES": str(setup.bodies), "BENCH_THREADS": str(WRK_THREADS)}
    if rate:
        env["BENCH_RATE"] = str(rate)
    try:
        with target.start() as running:
            s.run_wrk(
                running.url,
                threads=WRK_THREADS,
                connections=WRK_CONNECTIONS,
                seconds=2,
                script=s.WRK_DIR / "submit.lua",
                env=env,
            )
            spy = subprocess.Popen(
                [
                    py_spy(),
                    "record",
                    "--pid",
                    str(running.procs[0].pid),
                    "--subprocesses",
                    "--duration",
                    str(int(seconds)),
                    "--rate",
                    "200",
                    "--format",
                    "raw",
                    "--nonblocking",
                    "-o",
                    str(collapsed),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            time.sleep(1)
            result = s.run_wrk(
                running.url,
                threads=WRK_THREADS,
                connections=WRK_CONNECTIONS,
                seconds=seconds,
                script=s.WRK_DIR / "submit.lua",
                env=env,
            )
            _, err = spy.communicate(timeout=seconds + 60)
            if spy.returncode != 0:
                raise RuntimeError(f"py-spy failed: {err[-1000:]}")
            s.log(f"{target_name}: {result['ok_rps']:,.0f} req/s under py-spy")
    finally:
        setup.cleanup()
    return collapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what")
    parser.add_argument("file", nargs="?")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rate", type=int, default=0, help="pace wrk to this many requests/s")
    parser.add_argument("--out", type=Path, default=None, help="where to keep the profile")
    args = parser.parse_args()
    if args.what == "summary":
        print(summarise(Path(args.file)))
        return
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-profile-"))
    out.mkdir(parents=True, exist_ok=True)
    collapsed = record(args.what, args.seconds, args.workers, out, args.rate)
    print(f"profile: {collapsed}")
    print(summarise(collapsed))


if __name__ == "__main__":
    main()
