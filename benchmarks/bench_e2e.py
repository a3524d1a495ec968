"""Freshness: from the 202 to the submission being counted in the leaderboard, under steady load.

A stack (embedded `serve`, or the distributed collector + worker + api) takes generated sheets at
a steady rate (wrk, paced by benchmarks/wrk/submit.lua with BENCH_RATE) while a probe posts a
valid sheet to the probe unit's link every PROBE_EVERY_S and a poller reads the unit leaderboard
every POLL_EVERY_S: probe k is visible once the probe unit's valid count reaches k, so its
freshness is the first poll that shows it minus its 202 (resolution: the poll interval).
Baseline, in the same run: the same probes on the idle stack (no background load).

benchmarks.bench_memory runs the same stacks for longer and samples the processes' RSS.

    python -m benchmarks.bench_e2e [--quick] [--only embedded|distributed] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import support as s

RATE = 2000
PROBE_EVERY_S = 0.25
POLL_EVERY_S = 0.05
LOAD_THREADS = 1
LOAD_CONNECTIONS = 64
# One worker does ~2,000 events/s at a full core (RESULTS.md): at a steady 2,000/s it runs at
# its limit and the backlog (so the freshness) grows; the raw topic's 8 partitions split over two.
DISTRIBUTED_WORKERS = 2


@dataclass
class Stack:
    name: str
    post_url: str  # where answer sheets go
    read_url: str  # where the leaderboard is read
    procs: dict[str, s.Proc]
    notes: dict[str, Any] = field(default_factory=dict)

    def pids(self, role: str) -> Callable[[], list[int]]:
        return lambda: self.procs[role].tree() if role in self.procs else []

    def check(self) -> None:
        for p in self.procs.values():
            p.check()


def _define(url: str, definition: Any) -> None:
    import httpx

    deadline = time.monotonic() + 90
    while True:
        r = httpx.put(
            f"{url}/v1/admin/campaigns/{definition.campaign}",
            json=s.definition_json(definition),
            headers={"authorization": f"Bearer {s.ADMIN_TOKEN}"},
            timeout=60,
        )
        if r.status_code == 200:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"defining the campaign failed: {r.status_code} {r.text[:500]}")
        time.sleep(1)


def _ready(proc: s.Proc, url: str, timeout_s: float, repeats: int = 1) -> None:
    s.wait_until(
        f"{proc.name} ready",
        lambda: proc.check() and all(s.http_status(url + "/readyz") == 200 for _ in range(repeats)),
        timeout_s,
        every_s=0.25,
    )


@contextlib.contextmanager
def embedded_stack(work: Path) -> Iterator[Stack]:
    port = s.free_port()
    env = {"SURVEY_ADMIN_TOKEN": s.ADMIN_TOKEN, "SURVEY_HASH_KEY": s.HASH_KEY}
    proc = s.Proc(
        "serve",
        [*s.CLI, "serve", "--port", str(port), "--data-dir", str(work / f"serve-{s.tag()}")],
        work / "serve.log",
        env=env,
    )
    url = f"http://{s.HOST}:{port}"
    try:
        _ready(proc, url, 120)
        _define(url, s.bench_definition())
        yield Stack("embedded", url, url, {"serve": proc})
    finally:
        proc.stop(60)


def collector_workers_flag() -> bool:
    out = subprocess.run(
        [*s.CLI, "collector", "--help"], capture_output=True, text=True, timeout=60, cwd=s.ROOT
    ).stdout
    return "--workers" in out


@contextlib.contextmanager
def distributed_stack(work: Path, collectors: int = 2, workers: int = 1) -> Iterator[Stack]:
    bootstrap = s.kafka_bootstrap()
    ch = s.clickhouse_base()
    run_tag = s.tag()
    prefix, database = f"bench-e{run_tag}", f"bench_e2e_{run_tag}"
    env = {
        "SURVEY_KAFKA_BOOTSTRAP": bootstrap,
        "SURVEY_TOPIC_PREFIX": prefix,
        "SURVEY_CLICKHOUSE_URL": f"{ch}/{database}",
        "SURVEY_HASH_KEY": s.HASH_KEY,
        "SURVEY_ADMIN_TOKEN": s.ADMIN_TOKEN,
        "PYTHONUNBUFFERED": "1",
    }
    procs: dict[str, s.Proc] = {}
    try:
        done = subprocess.run(
            [*s.CLI, "migrate"],
            env={**os.environ, **env},
            cwd=s.ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if done.returncode != 0:
            raise RuntimeError(f"migrate failed: {done.stderr[-2000:]}")
        api_port, col_port, metrics_port = s.free_port(), s.free_port(), s.free_port()
        procs["api"] = s.Proc(
            "api", [*s.CLI, "api", "--port", str(api_port)], work / "api.log", env=env
        )
        api = f"http://{s.HOST}:{api_port}"
        _ready(procs["api"], api, 120)
        definition = s.bench_definition()
        _define(api, definition)
        metrics_ports: dict[str, int] = {}
        for i in range(workers):  # "worker", "worker2", ...: each its own instance and dir
            name = "worker" if i == 0 else f"worker{i + 1}"
            metrics_ports[name] = metrics_port if i == 0 else s.free_port()
            (work / name).mkdir(exist_ok=True)
            procs[name] = s.Proc(
                name,
                [
                    *s.CLI,
                    "worker",
                    "--instance-id",
                    f"{prefix}-w{i + 1}",
                    "--metrics-port",
                    str(metrics_ports[name]),
                ],
                work / f"{name}.log",
                env=env,
                cwd=work / name,
            )  # faust writes <app>-data/ here
        if collectors > 1 and collector_workers_flag():
            args = [*s.CLI, "collector", "--port", str(col_port), "--workers", str(collectors)]
            launcher = "survey-ingest collector --workers"
        elif collectors > 1:
            args = [
                s.PY,
                "-m",
                "benchmarks.serve_workers",
                "benchmarks.kafka_collector_app:create_app",
                "--factory",
                "--workers",
                str(collectors),
                "--port",
                str(col_port),
            ]
            launcher = "benchmarks.serve_workers + kafka_collector_app"
        else:
            args = [*s.CLI, "collector", "--port", str(col_port)]
            launcher = "survey-ingest collector"
        procs["collector"] = s.Proc("collector", args, work / "collector.log", env=env)
        col = f"http://{s.HOST}:{col_port}"
        _ready(procs["collector"], col, 120, repeats=4 * collectors)

        def workers_ready() -> bool:
            for name, port in metrics_ports.items():
                procs[name].check()
                conn = http.client.HTTPConnection(s.HOST, port, timeout=2)
                try:
                    conn.request("GET", "/metrics")
                    if "survey_process_ready 1.0" not in conn.getresponse().read().decode():
                        return False
                finally:
                    conn.close()
            return True

        s.wait_until("workers ready", workers_ready, 180, every_s=0.5)
        yield Stack(
            "distributed",
            col,
            api,
            procs,
            notes={
                "collectors": collectors,
                "workers": workers,
                "collector_launcher": launcher,
                "prefix": prefix,
                "database": database,
            },
        )
    finally:
        for name in ("collector", *(n for n in procs if n.startswith("worker")), "api"):
            if name in procs:
                procs[name].stop(30)
        s.delete_topics(bootstrap, prefix)
        with contextlib.suppress(Exception):
            s.drop_database(database)


class Prober:
    """Posts probes at a steady pace and polls the leaderboard; freshness per probe."""

    def __init__(self, stack: Stack, run: str) -> None:
        self.stack = stack
        self.run = run
        self.acked: dict[int, float] = {}
        self.visible: dict[int, float] = {}
        self.errors: list[str] = []
        self.polls = 0
        self.poll_ms: list[float] = []
        self._stop = threading.Event()
        self._seq = 0
        self._posting = threading.Event()  # set while the poster may still add an acked probe
        self._base_count = 0

    def _conn(self, url: str) -> http.client.HTTPConnection:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        return http.client.HTTPConnection(parts.hostname or s.HOST, parts.port, timeout=10)

    def _probe_count(self, conn: http.client.HTTPConnection) -> int:
        conn.request("GET", "/v1/campaigns/2026/leaderboard?level=unit")
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"leaderboard {response.status}: {body[:200]!r}")
        for row in json.loads(body)["rows"]:
            if row["id"] == s.PROBE_UNIT:
                return int(row["valid"])
        return 0

    def _post_loop(self) -> None:
        conn = self._conn(self.stack.post_url)
        next_at = time.monotonic()
        try:
            self._post_until_stopped(conn, next_at)
        finally:
            self._posting.clear()

    def _post_until_stopped(self, conn: http.client.HTTPConnection, next_at: float) -> None:
        while not self._stop.is_set():
            self._seq += 1
            seq = self._seq
            body = json.dumps(s.probe_body(seq, self.run)).encode()
            for _attempt in range(20):
                try:
                    conn.request(
                        "POST", "/v1/submissions", body, {"content-type": "application/json"}
                    )
                    response = conn.getresponse()
                    response.read()
                    if response.status == 202:
                        self.acked[seq] = time.monotonic()
                        break
                    self.errors.append(f"probe {seq}: {response.status}")
                except (OSError, http.client.HTTPException) as exc:
                    self.errors.append(f"probe {seq}: {exc!r}")
                    conn.close()
                    conn = self._conn(self.stack.post_url)
                time.sleep(0.05)
            next_at += PROBE_EVERY_S
            self._stop.wait(max(0.0, next_at - time.monotonic()))
        conn.close()

    def _poll_loop(self) -> None:
        conn = self._conn(self.stack.read_url)
        # Not `_stop` alone: a probe answered 202 just after the stop must still be waited for.
        while self._posting.is_set() or len(self.visible) < len(self.acked):
            t = time.monotonic()
            try:
                count = self._probe_count(conn) - self._base_count
            except (OSError, http.client.HTTPException, RuntimeError, ValueError) as exc:
                self.errors.append(f"poll: {exc!r}")
                conn.close()
                conn = self._conn(self.stack.read_url)
                time.sleep(POLL_EVERY_S)
                continue
            now = time.monotonic()
            self.polls += 1
            self.poll_ms.append((now - t) * 1e3)
            for k in range(1, count + 1):
                self.visible.setdefault(k, now)
            if self._stop.is_set() and now - self._stopped_at > 30:
                break  # probes not visible 30 s after the end count as not fresh
            time.sleep(max(0.0, POLL_EVERY_S - (time.monotonic() - t)))
        conn.close()

    def run_for(self, seconds: float) -> dict[str, Any]:
        conn = self._conn(self.stack.read_url)
        try:
            self._base_count = self._probe_count(conn)  # probes of an earlier phase
        finally:
            conn.close()
        self._stopped_at = 0.0
        self._posting.set()
        poster = threading.Thread(target=self._post_loop, daemon=True)
        poller = threading.Thread(target=self._poll_loop, daemon=True)
        poster.start()
        poller.start()
        time.sleep(seconds)
        self._stopped_at = time.monotonic()
        self._stop.set()
        poster.join(30)
        poller.join(60)
        fresh = [max(0.0, self.visible[k] - t) for k, t in self.acked.items() if k in self.visible]
        missing = [k for k in self.acked if k not in self.visible]
        # A probe never seen counts with the time it was waited for: the percentiles are then
        # lower bounds (flagged), never flattered by leaving the slowest probes out.
        gave_up = time.monotonic()
        fresh += [gave_up - self.acked[k] for k in missing]
        out: dict[str, Any] = dict(s.summary_ms(fresh))
        out["lower_bound"] = bool(missing)
        out |= {
            "probes": len(self.acked),
            "not_visible": len(missing),
            "polls": self.polls,
            "poll_p95_ms": round(s.percentile(self.poll_ms, 95), 1),
            "errors": self.errors[:10],
            "error_count": len(self.errors),
        }
        return out


def loaded(
    stack: Stack,
    bodies: Path,
    seconds: float,
    rate: int,
    on_start: Callable[[], object] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Probe freshness while wrk posts generated sheets at `rate`/s; returns (freshness, wrk)."""
    warm = 5.0
    wrk_out: dict[str, Any] = {}

    def load() -> None:
        try:
            wrk_out.update(
                s.run_wrk(
                    stack.post_url,
                    threads=LOAD_THREADS,
                    connections=LOAD_CONNECTIONS,
                    seconds=seconds + warm + 2,
                    script=s.WRK_DIR / "submit.lua",
                    env={
                        "BENCH_BODIES": str(bodies),
                        "BENCH_RATE": str(rate),
                        "BENCH_THREADS": str(LOAD_THREADS),
                    },
                )
            )
        except Exception as exc:
            wrk_out["error"] = repr(exc)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    time.sleep(warm)
    if on_start is not None:
        on_start()
    fresh = Prober(stack, f"l{s.tag()}").run_for(seconds)
    loader.join(seconds + 120)
    return fresh, wrk_out


def measure(stack: Stack, bodies: Path, idle_s: float, loaded_s: float) -> dict[str, Any]:
    s.log(f"e2e {stack.name}: idle probes for {idle_s:g} s")
    idle = Prober(stack, f"i{s.tag()}").run_for(idle_s)
    s.log(f"e2e {stack.name}: idle freshness p50 {idle['p50_ms']} ms, p95 {idle['p95_ms']} ms")
    groups = {role: stack.pids(role) for role in stack.procs}
    if stack.name == "distributed":
        groups |= {"kafka_broker": s.kafka_pids, "clickhouse": s.clickhouse_pids}
    meter = s.CpuMeter(groups)
    fresh, wrk = loaded(stack, bodies, loaded_s, RATE, on_start=meter.__enter__)
    # wrk ran a little longer than the meter (warm-up): its share is scaled to the window.
    wrk_s = wrk.get("cpu_s", 0.0) * loaded_s / max(1.0, wrk.get("duration_us", 1e6) / 1e6)
    cpu = meter.stop({"wrk": wrk_s})
    stack.check()
    s.log(
        f"e2e {stack.name}: at {wrk.get('ok_rps')} req/s freshness p50 {fresh['p50_ms']} ms, "
        f"p95 {fresh['p95_ms']} ms, {fresh['not_visible']} of {fresh['probes']} not visible"
    )
    return {
        "idle": idle,
        "loaded": fresh,
        "load": wrk,
        "cpu": cpu,
        "notes": stack.notes,
        "ratio_p95_loaded_vs_idle": s.ratio(fresh["p95_ms"], idle["p95_ms"]),
    }


def run(
    quick: bool, work: Path, only: str | None = None, workers: int = DISTRIBUTED_WORKERS
) -> dict[str, Any]:
    idle_s, loaded_s = (8.0, 20.0) if quick else (15.0, 60.0)
    bodies = s.write_body_templates(work / "bodies.txt", s.bench_definition(), 4000)
    out: dict[str, Any] = {
        "rate": RATE,
        "probe_every_s": PROBE_EVERY_S,
        "poll_every_s": POLL_EVERY_S,
    }
    stacks: dict[str, Callable[[], contextlib.AbstractContextManager[Stack]]] = {
        "embedded": lambda: embedded_stack(work),
        "distributed": lambda: distributed_stack(work, workers=workers),
    }
    for name, make in stacks.items():
        if only and name != only:
            continue
        try:
            with make() as stack:
                out[name] = measure(stack, bodies, idle_s, loaded_s)
        except s.BenchUnavailable as exc:
            out[name] = {"unavailable": str(exc)}
        except Exception as exc:
            s.log(f"e2e {name} failed: {exc!r}")
            out[name] = {"failed": repr(exc)[:3000]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["embedded", "distributed"])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--workers", type=int, default=DISTRIBUTED_WORKERS,
                        help="faust worker processes in the distributed stack")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        text = json.dumps(run(args.quick, Path(tmp), args.only, args.workers), indent=2)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
