"""Child processes and what they cost: a process in its own session, CPU and memory accounting
(per process tree and for the whole machine), and a description of the machine."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import signal
import statistics
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from benchmarks.common import CLK_TCK, DISTURBED_CORES, ROOT, log


class Proc:
    """A child process in its own session, output to a log file; stopped by its own pid."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path = ROOT,
    ) -> None:
        self.name = name
        self.args = list(args)
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - the child writes it
        self.proc = subprocess.Popen(
            self.args,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid = self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def check(self) -> bool:
        if not self.alive():
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
        return True

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def tree(self) -> list[int]:
        """This process and its descendants (e.g. uvicorn workers under a supervisor)."""
        return [self.pid, *descendants(self.pid)] if self.alive() else []

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.alive():
            pids = self.tree()
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log(f"{self.name} did not stop within {timeout_s:.0f} s of SIGTERM: SIGKILL")
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                self.proc.wait(10)
            # Children of a supervisor that died first (only our own, by pid).
            for pid in pids[1:]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self._log.close()


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU of one process (its threads included), 0 when it is gone; with
    `children`, plus what its reaped children used (cutime + cstime)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(b")") + 2 :].split()
    used = int(fields[11]) + int(fields[12])
    if children:
        used += int(fields[13]) + int(fields[14])
    return used / CLK_TCK


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def busy_cpu_seconds() -> float:
    """CPU time all processes on the machine used (idle and iowait excluded)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    steal = fields[7] if len(fields) > 7 else 0
    return (sum(fields[:8]) - idle - steal) / CLK_TCK


class CpuMeter:
    """Cores used per named group of pids during a measurement, and by everything else.

    `foreign_cores` is what other processes (other engineers' tests on this shared machine) took
    meanwhile: above DISTURBED_CORES the figure is marked disturbed and the caller may repeat it.
    """

    def __init__(self, groups: Mapping[str, Callable[[], Iterable[int]]]) -> None:
        self.groups = groups
        self._pids: dict[str, list[int]] = {}
        self._start: dict[int, float] = {}
        self._t0 = 0.0
        self._busy0 = 0.0
        self.result: dict[str, Any] = {}

    def __enter__(self) -> CpuMeter:
        self._pids = {name: sorted(set(get())) for name, get in self.groups.items()}
        self._pids.setdefault("harness", [os.getpid()])
        self._start = {pid: cpu_seconds(pid) for pids in self._pids.values() for pid in pids}
        self._busy0 = busy_cpu_seconds()
        self._t0 = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, extra_cpu_s: dict[str, float] | None = None) -> dict[str, Any]:
        """`extra_cpu_s`: CPU seconds of processes already reaped (wrk, from its rusage)."""
        elapsed = time.monotonic() - self._t0
        busy = busy_cpu_seconds() - self._busy0
        cores: dict[str, float] = {}
        ours = 0.0
        for name, used in (extra_cpu_s or {}).items():
            ours += used
            cores[name] = round(used / elapsed, 2) if elapsed > 0 else 0.0
        for name, pids in self._pids.items():
            used = sum(max(0.0, cpu_seconds(pid) - self._start.get(pid, 0.0)) for pid in pids)
            ours += used
            cores[name] = round(used / elapsed, 2) if elapsed > 0 else 0.0
        foreign = max(0.0, busy - ours) / elapsed if elapsed > 0 else 0.0
        self.result = {
            "cores": cores,
            "machine_busy_cores": round(busy / elapsed, 2) if elapsed else 0.0,
            "foreign_cores": round(foreign, 2),
            "disturbed": foreign > DISTURBED_CORES,
            "loadavg_1m": float(Path("/proc/loadavg").read_text().split()[0]),
        }
        return self.result


class RssSampler:
    """Samples the RSS of named processes every `every_s` seconds in a thread."""

    def __init__(
        self, groups: Mapping[str, Callable[[], Iterable[int]]], every_s: float = 2.0
    ) -> None:
        import threading

        self.groups = groups
        self.every_s = every_s
        self.samples: dict[str, list[tuple[float, int]]] = {name: [] for name in groups}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")
        self._t0 = 0.0

    def start(self) -> RssSampler:
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while True:
            now = time.monotonic() - self._t0
            for name, get in self.groups.items():
                pids = list(get())
                if pids:
                    self.samples[name].append((now, sum(rss_bytes(p) for p in pids)))
            if self._stop.wait(self.every_s):
                return


def slope_per_min(samples: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of value over time, per minute."""
    if len(samples) < 3:
        return math.nan
    xs = [t for t, _ in samples]
    ys = [v for _, v in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return (
        60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
        if sxx
        else math.nan
    )


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    free = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.strip()
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    mem_total = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total = int(line.split()[1]) * 1024
    return {
        "cpu_model": model,
        "nproc": int(nproc or os.cpu_count() or 0),
        "mem_total_gib": round(mem_total / 2**30, 1),
        "free_h": free,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


@dataclass
class Stopwatch:
    started: float = field(default_factory=time.monotonic)

    def __call__(self) -> float:
        return time.monotonic() - self.started


@contextlib.contextmanager
def stopping(*procs: Proc) -> Iterator[None]:
    try:
        yield
    finally:
        for p in procs:
            p.stop()
