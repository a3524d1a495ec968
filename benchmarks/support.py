"""What every benchmark needs: processes, ports, wrk, CPU and memory accounting, services, campaign.

Everything here talks to 127.0.0.1 only, and every wait is bounded: a benchmark that cannot get
what it needs fails with a message instead of hanging.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
import zoneinfo
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

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
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_s)
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


# -- processes -----------------------------------------------------------------------------------


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


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (its threads included), 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


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

    def __init__(self, groups: dict[str, Callable[[], Iterable[int]]]) -> None:
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
        self, groups: dict[str, Callable[[], Iterable[int]]], every_s: float = 2.0
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


# -- services ------------------------------------------------------------------------------------

SERVICE_WAIT_S = float(os.environ.get("BENCH_SERVICE_WAIT_S", "600"))


def _start_script(name: str, env: dict[str, str], wait_s: float) -> str:
    script = ROOT / "infra" / name / "start.sh"
    deadline = time.monotonic() + wait_s
    while not script.exists():
        if time.monotonic() > deadline:
            raise BenchUnavailable(
                f"{script.relative_to(ROOT)} does not exist (waited {wait_s:.0f} s)"
            )
        log(f"waiting for {script.relative_to(ROOT)} to exist")
        time.sleep(15)
    done = subprocess.run(
        ["bash", str(script)],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        raise BenchUnavailable(f"{script.relative_to(ROOT)} failed: {done.stderr[-1500:]}")
    lines = done.stdout.strip().splitlines()
    return lines[-1].strip() if lines else ""


_KAFKA: str | None = None
_CLICKHOUSE: str | None = None


def kafka_bootstrap() -> str:
    """Kafka on 127.0.0.1:9092 (infra/kafka/start.sh; a no-op when it already runs)."""
    global _KAFKA
    if _KAFKA is None:
        env = {"SURVEY_KAFKA_PORT": "9092"}
        out = _start_script("kafka", env, SERVICE_WAIT_S)
        _KAFKA = out if re.fullmatch(r"127\.0\.0\.1:\d+", out) else "127.0.0.1:9092"
    return _KAFKA


def clickhouse_base() -> str:
    """clickhouse://127.0.0.1:9000 (infra/clickhouse/start.sh), without a database."""
    global _CLICKHOUSE
    if _CLICKHOUSE is None:
        env = {"SURVEY_CLICKHOUSE_TCP_PORT": os.environ.get("BENCH_CLICKHOUSE_TCP_PORT", "9000")}
        if os.environ.get("BENCH_CLICKHOUSE_URL"):
            _CLICKHOUSE = os.environ["BENCH_CLICKHOUSE_URL"].rstrip("/")
        else:
            _start_script("clickhouse", env, SERVICE_WAIT_S)
            _CLICKHOUSE = f"clickhouse://127.0.0.1:{env['SURVEY_CLICKHOUSE_TCP_PORT']}"
    return _CLICKHOUSE


def clickhouse_client(database: str = "default") -> Any:
    from urllib.parse import urlsplit

    from clickhouse_driver import Client

    parts = urlsplit(clickhouse_base())
    return Client(
        host=parts.hostname or HOST,
        port=parts.port or 9000,
        database=database,
        settings={"max_query_size": 16 * 1024 * 1024},
        connect_timeout=10,
    )


def drop_database(database: str) -> None:
    client = clickhouse_client()
    try:
        client.execute(f"DROP DATABASE IF EXISTS {database}")
    finally:
        client.disconnect()


def kafka_pids() -> list[int]:
    """The broker's JVM (for CPU accounting): the pid file infra/kafka/start.sh writes."""
    data = Path(os.environ.get("SURVEY_INFRA_DATA", "/tmp/survey-ingest-infra"))
    pidfile = data / "kafka-9092" / "kafka.pid"
    with contextlib.suppress(OSError, ValueError):
        pid = int(pidfile.read_text().strip())
        if Path(f"/proc/{pid}").exists():
            return [pid]
    return _pids_matching(b"kafka.Kafka", b"kafka-9092")


def clickhouse_pids() -> list[int]:
    port = clickhouse_base().rsplit(":", 1)[-1].encode()
    found = _pids_matching(b"clickhouse", b"")
    # Several servers may run (other engineers' tests): keep the one listening on our port.
    listening = _pids_listening(int(port))
    return [p for p in found if p in listening] or listening


def _pids_matching(*needles: bytes) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if all(n in cmd for n in needles):
                out.append(int(entry))
    return out


def _pids_listening(port: int) -> list[int]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(parts[9])
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{entry}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{entry}/fd/{fd}")
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        pids.append(int(entry))
                        break
    return pids


def topic_end(bootstrap: str, topic: str) -> int:
    """Sum of the end offsets of every partition of `topic`."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=10_000,
    )
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        return int(sum(consumer.end_offsets(tps).values())) if tps else 0
    finally:
        consumer.close()


def delete_topics(bootstrap: str, prefix: str) -> None:
    """Removes the benchmark's own topics (all named `prefix...`) so runs do not pile up."""
    from runtime.distributed.topics import admin_client

    admin = admin_client(bootstrap)
    try:
        names = [t for t in admin.list_topics() if t.startswith(prefix)]
        if names:
            admin.delete_topics(names, timeout_ms=30_000)
    except Exception as exc:
        log(f"could not delete topics {prefix}*: {exc}")
    finally:
        admin.close()


# -- the campaign the benchmarks use -------------------------------------------------------------


def bench_definition() -> Any:
    """The example campaign (135 units, 494 links), collecting today, plus the probe unit."""
    from schemas.campaign import CampaignDefinition, Link, Unit, load_campaign_file

    definition: CampaignDefinition = load_campaign_file(EXAMPLE_CAMPAIGN)
    today = dt.datetime.now(zoneinfo.ZoneInfo(definition.timezone)).date()
    counting = next(p for p in definition.phases if p.counts)
    if not counting.start <= today <= counting.end:
        shift = (today - dt.timedelta(days=3)) - counting.start
        phases = [
            p.model_copy(update={"start": p.start + shift, "end": p.end + shift})
            for p in definition.phases
        ]
        phases = [
            p.model_copy(update={"end": max(p.end, today + dt.timedelta(days=7))})
            if p.counts
            else p
            for p in phases
        ]
        definition = definition.model_copy(update={"phases": phases})
    province = definition.provinces[0].id
    units = [
        *definition.units,
        Unit(
            id=PROBE_UNIT,
            name="benchmark probe",
            kind="volunteer",
            province=province,
            planned_samples=1,
        ),
    ]
    links = [*definition.links, Link(code=PROBE_LINK, unit=PROBE_UNIT, channel="bench")]
    return CampaignDefinition.model_validate(
        {
            **definition.model_dump(),
            "units": [u.model_dump() for u in units],
            "links": [lk.model_dump() for lk in links],
        }
    )


def definition_json(definition: Any) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(definition.model_dump_json())
    return out


def sheet_bodies(
    definition: Any, n: int, seed: int = 7, valid_share: float = 0.9
) -> list[dict[str, Any]]:
    """n realistic answer sheets (the demo generator: 10% carry a flaw) for `definition`."""
    from simulation.generator import SheetFactory

    factory = SheetFactory(definition, valid_share=valid_share)
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    out = []
    for _ in range(n):
        body = factory.make(rng, now).body
        if body.get("link_code") == PROBE_LINK:  # the probe's count must be the probes alone
            continue
        out.append(body)
    return out


ID_PLACEHOLDER = "@@ID@@"


def write_body_templates(path: Path, definition: Any, n: int, seed: int = 7) -> Path:
    """One answer-sheet body per line, with @@ID@@ where wrk puts a unique token: in the
    submission_id and the device_id, so every request is a new sheet from a new device."""
    lines = []
    for body in sheet_bodies(definition, n, seed):
        body["submission_id"] = ID_PLACEHOLDER
        if body.get("device_id"):
            body["device_id"] = "d" + ID_PLACEHOLDER
        lines.append(json.dumps(body, ensure_ascii=False, separators=(",", ":")))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def probe_body(seq: int, run: str) -> dict[str, Any]:
    """A valid sheet credited to the probe unit, unique per (run, seq)."""
    now = dt.datetime.now(dt.UTC)
    return {
        "submission_id": f"probe-{run}-{seq:08d}",
        "campaign": "2026",
        "link_code": PROBE_LINK,
        "questionnaire_version": "2026.1",
        "started_at": (now - dt.timedelta(minutes=6)).isoformat(),
        "submitted_at": now.isoformat(),
        "respondent": {"province": "11", "city": "1101", "age_group": "25-34"},
        "device_id": f"probe-device-{run}-{seq}",
        "answers": {
            "q1": 4,
            "q2": 3,
            "q3": 5,
            "q4": 2,
            "q5": 4,
            "q6": 3,
            "q7": 4,
            "q8": "1至3小时",
            "q9": "其他",
            "q10": ["网络诈骗"],
            "q11": ["未成年人网络保护"],
        },
    }


# -- machine -------------------------------------------------------------------------------------


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


# -- records as the pipeline sees them -----------------------------------------------------------


def received_record(body: dict[str, Any], received_at: dt.datetime, client: str = "") -> bytes:
    """A raw-log record exactly as ingest/collector.py writes it (the body as posted)."""
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return b"".join(
        (
            b'{"v":1,"kind":"submission.received","received_at":"',
            received_at.isoformat().encode(),
            b'","client":"',
            client.encode(),
            b'","body":',
            raw,
            b"}",
        )
    )


def unique_bodies(definition: Any, n: int, run: str, seed: int = 11) -> list[dict[str, Any]]:
    """n generated sheets, each with its own submission_id and device_id (as wrk sends them)."""
    base = sheet_bodies(definition, min(n, 4000), seed)
    out = []
    for i in range(n):
        body = dict(base[i % len(base)])
        body["submission_id"] = f"{run}-{i:012d}"
        if body.get("device_id"):
            body["device_id"] = f"d{run}-{i:012d}"
        out.append(body)
    return out


def registry_for(definition: Any) -> Any:
    import datetime as _dt

    from core.registry import Registry
    from schemas.events import CampaignDefined

    registry = Registry()
    registry.apply(
        CampaignDefined(
            campaign=definition.campaign,
            defined_at=_dt.datetime(2026, 1, 1, tzinfo=_dt.UTC),
            definition=definition,
        )
    )
    return registry


def judged_rows(definition: Any, n: int, run: str) -> list[Any]:
    """n verdicts as the judge makes them from generated sheets (unique ids and devices)."""
    from core.judge import JudgeState, judge
    from schemas.events import SubmissionReceived

    registry = registry_for(definition)
    state = JudgeState.empty()
    now = dt.datetime.now(dt.UTC)
    rows = []
    for i, body in enumerate(unique_bodies(definition, n, run)):
        received = SubmissionReceived(received_at=now, client=f"{i:032x}", body=body)
        verdict, _ = judge(received, f"0:{i}", registry, state, HASH_KEY)
        rows.append(verdict)
    return rows
