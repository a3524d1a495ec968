"""Runs `survey-ingest <role>` processes for tests, each stack on its own topics and database."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import httpx

from tests.integration.embedded_server import ADMIN_TOKEN, free_port

ROOT = Path(__file__).resolve().parents[2]


def wait_until(
    what: str, check: Callable[[], bool], timeout_s: float, every_s: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(every_s)


def _answers(url: str, status: int = 200) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == status
    except httpx.HTTPError:
        return False


class Role:
    """One `survey-ingest <role>` subprocess, its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> Role:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - the child writes it while it runs
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "commands.cli", self.name, *self.args],
            env=self.env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
        return True

    def tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM, and wait until it has exited (SIGKILL past `timeout_s`)."""
        self.terminate()
        self.wait_stopped(timeout_s)

    def terminate(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)

    def wait_stopped(self, timeout_s: float = 20.0) -> None:
        if self.alive():
            assert self.proc is not None
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log is not None:
            self._log.close()
            self._log = None


class Stack:
    """Collector, worker and API on a unique topic prefix and ClickHouse database."""

    def __init__(
        self, kafka_bootstrap: str, clickhouse_url: str, workdir: Path, **env: str
    ) -> None:
        tag = uuid.uuid4().hex[:10]
        self.prefix = f"t{tag}"
        self.database = f"t_{tag}"
        base = clickhouse_url.rstrip("/").rsplit("/", 1)[0]
        self.clickhouse_url = f"{base}/{self.database}"
        self.kafka_bootstrap = kafka_bootstrap
        self.workdir = workdir
        self.env = {
            **os.environ,
            "SURVEY_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "SURVEY_CLICKHOUSE_URL": self.clickhouse_url,
            "SURVEY_TOPIC_PREFIX": self.prefix,
            "SURVEY_ADMIN_TOKEN": ADMIN_TOKEN,
            "SURVEY_RAW_PARTITIONS": "4",
            "SURVEY_SINK_BATCH_SECONDS": "0.2",
            # The worker's tables (RocksDB) under the stack's own directory, not ./data.
            "SURVEY_DATA_DIR": str(workdir),
            "PYTHONUNBUFFERED": "1",
            "SURVEY_DRAIN_SECONDS": "0",  # stopped at once; the drain has its own test
            **env,
        }
        self.collector_port = free_port()
        self.api_port = free_port()
        self.worker_metrics_port = free_port()
        self.collector_url = f"http://127.0.0.1:{self.collector_port}"
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.roles: dict[str, Role] = {}

    def role(self, name: str, *args: str, key: str | None = None) -> Role:
        key = key or name
        role = Role(name, list(args), self.env, self.workdir / f"{self.prefix}-{key}.log")
        self.roles[key] = role
        return role.start()

    def run(
        self, name: str, *args: str, timeout_s: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """A one-shot command (migrate, replay, reconcile), its output captured."""
        return subprocess.run(
            [sys.executable, "-m", "commands.cli", name, *args], env=self.env, cwd=ROOT,
            capture_output=True, text=True, timeout=timeout_s,
        )

    def start(self, timeout_s: float = 90.0, *, worker: bool = True) -> Stack:
        """Migrate, then collector, API and (unless `worker` is False: a test that runs its own
        `Worker`s) the worker; returns once each is ready."""
        migrated = self.run("migrate")
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        self.role("collector", "--port", str(self.collector_port))
        self.role("api", "--port", str(self.api_port))
        if worker:
            self.start_worker()
        for name, url in (("collector", self.collector_url), ("api", self.api_url)):
            role = self.roles[name]

            def ready(role: Role = role, url: str = url) -> bool:
                return role.check_alive() and _answers(f"{url}/readyz")

            wait_until(f"{name} ready", ready, timeout_s)
        if worker:
            self.wait_worker_ready(timeout_s)
        return self

    def start_worker(self) -> Role:
        return self.role("worker", "--instance-id", f"{self.prefix}-w1",
                         "--metrics-port", str(self.worker_metrics_port))

    def worker_tables(self) -> Path:
        """Where start_worker's worker keeps its tables (stream_processors.table_dir)."""
        from schemas.settings import Settings
        from stream_processors.faust_topology import Topology

        app_id = Topology.of(Settings(topic_prefix=self.prefix)).app_id
        return Path(self.env["SURVEY_DATA_DIR"]) / "faust" / app_id / f"{self.prefix}-w1"

    def worker_metric(self, name: str) -> float:
        """The sum of a counter over its labels, from the worker's /metrics."""
        text = httpx.get(f"http://127.0.0.1:{self.worker_metrics_port}/metrics", timeout=2).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name) and (line[len(name)] in " {"))

    def wait_worker_ready(self, timeout_s: float = 90.0) -> None:
        worker = self.roles["worker"]

        def ready() -> bool:
            worker.check_alive()
            try:
                url = f"http://127.0.0.1:{self.worker_metrics_port}/metrics"
                text = httpx.get(url, timeout=1).text
            except httpx.HTTPError:
                return False
            return "survey_process_ready 1.0" in text

        try:
            wait_until("worker ready", ready, timeout_s, every_s=0.25)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{worker.tail()}") from None

    def stop(self) -> None:
        """Every role stopped: all signalled at once, then each waited for (a worker's shutdown
        takes seconds; one after the other they added up in every module's teardown)."""
        for role in self.roles.values():
            role.terminate()
        for role in self.roles.values():
            role.wait_stopped()

    # HTTP helpers
    def define(self, definition: dict[str, Any], token: str | None = ADMIN_TOKEN) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.put(f"{self.api_url}/v1/admin/campaigns/{definition['campaign']}",
                         json=definition, headers=headers, timeout=40)

    def post(self, body: Any) -> httpx.Response:
        return httpx.post(f"{self.collector_url}/v1/submissions", json=body, timeout=20)

    def post_until_taken(self, body: dict[str, Any], timeout_s: float) -> None:
        """Post (bounded) until the collector answers 202: a new campaign is taken once the
        collector's own registry follower has applied it, a moment after the PUT returned."""
        answers: list[str] = []

        def taken() -> bool:
            r = self.post(body)
            answers.append(f"{r.status_code} {r.text}")
            return r.status_code == 202

        try:
            wait_until(f"collector takes a sheet for {body['campaign']}", taken, timeout_s)
        except TimeoutError as exc:
            tail = self.roles["collector"].tail()
            raise AssertionError(f"{exc}: {answers[-3:]}\n{tail}") from None

    def status(self, campaign: str, sid: str) -> httpx.Response:
        return httpx.get(f"{self.api_url}/v1/campaigns/{campaign}/submissions/{sid}", timeout=10)

    def board(self, campaign: str, level: str) -> dict[str, dict[str, Any]]:
        r = httpx.get(f"{self.api_url}/v1/campaigns/{campaign}/leaderboard",
                      params={"level": level}, timeout=10)
        assert r.status_code == 200, r.text
        payload = r.json()
        assert payload["campaign"] == campaign and payload["level"] == level and payload["as_of"]
        return {row["id"]: row for row in payload["rows"]}


_JUDGED = re.compile(r"^survey_processor_judged_total\{[^}]*\} ([0-9.e+]+)$", re.M)


class Worker:
    """One more `survey-ingest worker` of a stack, with a static instance id (`<prefix>-w<n>`)
    and a metrics port of its own; its tables under the stack's data dir, as every worker's
    (each in its own directory there). Stopped with the stack."""

    def __init__(self, stack: Stack, n: int) -> None:
        self.stack = stack
        self.key = f"worker-{n}"
        self.instance_id = f"{stack.prefix}-w{n}"
        self.metrics_port = free_port()
        self.data_dir = Path(stack.env["SURVEY_DATA_DIR"])
        self.role: Role | None = None

    def start(self) -> Worker:
        """Starts it (again: the same instance id, so it takes its partitions back)."""
        self.role = Role("worker", ["--instance-id", self.instance_id,
                                    "--metrics-port", str(self.metrics_port)],
                         self.stack.env,
                         self.stack.workdir / f"{self.stack.prefix}-{self.key}.log").start()
        self.stack.roles[self.key] = self.role  # stopped with the stack
        return self

    def metrics(self) -> str:
        assert self.role is not None
        self.role.check_alive()
        try:
            return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return ""

    def judged(self) -> int:
        """Verdicts this process made since it started (its own counter, not the group's)."""
        return int(sum(float(v) for v in _JUDGED.findall(self.metrics())))

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        assert self.role is not None
        try:
            wait_until(f"{self.key} ready", lambda: "survey_process_ready 1.0" in self.metrics(),
                       timeout_s, every_s=0.25)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.role.tail()}") from None
