"""Collector requests/s and latency under wrk, against the HTTP limit and the obvious endpoint.

(One file past 500 lines: one benchmark whose targets share its wrk run, its checks that every
2xx is in the log, and its report; the servers it starts live in their own modules.)

Targets, all under the same server stack (uvicorn + uvloop + httptools, lifespan off, no access
log) and the same wrk settings (threads, connections, duration, the same answer-sheet bodies with
a unique submission_id and device_id per request):

  noop_1w / noop_2w          benchmarks/noop_app.py: reads the body, answers 202 (the HTTP limit)
  naive_2w                   benchmarks/naive_fastapi_app.py: FastAPI + pydantic + kafka-python,
                             one blocking acks=all send per request
  collector_embedded         `survey-ingest serve` (one process by design: it owns the file log
                             and chDB), 202 after group commit + fdatasync
  collector_kafka_cli_1w     `survey-ingest collector` as shipped (one process)
  collector_kafka_cli_2w     `survey-ingest collector --workers 2` as shipped: 2 processes, each
                             with its own SO_REUSEPORT socket, metrics summed, acks=all
                             (collector_kafka_2w, the same app under benchmarks/serve_workers.py,
                             only where the CLI has no --workers)
  <kafka target>+VARIANT     a proposal measured beside it (benchmarks/proposals, --variant)

Every 202 is checked against the log afterwards: the records in the raw topic (or the embedded
raw log) must be at least the 2xx answers wrk counted, warm-up included.

    python -m benchmarks.bench_collector [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import support as s

WRK_THREADS = 2
WRK_CONNECTIONS = int(os.environ.get("BENCH_WRK_CONNECTIONS", "256"))


@dataclass
class Running:
    url: str
    procs: list[s.Proc]
    # Records durably in the log so far (None: the target has no log). Called after the run.
    log_records: Callable[[], int] | None = None
    uses_kafka: bool = False
    notes: dict[str, Any] = field(default_factory=dict)

    def pids(self) -> list[int]:
        return [pid for p in self.procs for pid in p.tree()]


@dataclass
class Variant:
    """A proposed change measured beside the code as it is: another source tree (cwd) or extra
    packages (pythonpath), e.g. `--variant crc32c:pythonpath=/tmp/overlay`."""

    name: str
    cwd: Path | None = None
    pythonpath: str | None = None
    factory: str = "benchmarks.kafka_collector_app:create_app"

    @classmethod
    def parse(cls, text: str) -> Variant:
        name, _, rest = text.partition(":")
        fields = dict(kv.split("=", 1) for kv in rest.split(";") if kv)
        return cls(
            name,
            Path(fields["cwd"]) if "cwd" in fields else None,
            fields.get("pythonpath"),
            fields.get("factory", "benchmarks.kafka_collector_app:create_app"),
        )

    def describe(self) -> str:
        return ", ".join(
            f"{k} {v}"
            for k, v in (
                ("source tree", self.cwd),
                ("extra packages", self.pythonpath),
                ("app factory", self.factory),
            )
            if v
        )


@dataclass
class Target:
    name: str
    description: str
    workers: int
    start: Callable[[], contextlib.AbstractContextManager[Running]]
    needs_kafka: bool = False


def _wait_workers(proc: s.Proc, workers: int, url: str, timeout_s: float = 90.0) -> None:
    def ready() -> bool:
        proc.check()
        if proc.tail(100_000).count("worker ready") < workers:
            return False
        s.http_status(url + "/healthz")
        return True

    s.wait_until(f"{proc.name} ready", ready, timeout_s)


@contextlib.contextmanager
def _workers_target(
    name: str,
    app: str,
    workers: int,
    work: Path,
    env: dict[str, str] | None = None,
    factory: bool = False,
    cwd: Path = s.ROOT,
) -> Iterator[Running]:
    port = s.free_port()
    args = [
        s.PY,
        "-m",
        "benchmarks.serve_workers",
        app,
        "--workers",
        str(workers),
        "--port",
        str(port),
    ] + (["--factory"] if factory else [])
    proc = s.Proc(name, args, work / f"{name}.log", env=env, cwd=cwd)
    try:
        url = f"http://{s.HOST}:{port}"
        _wait_workers(proc, workers, url)
        yield Running(url, [proc])
    finally:
        proc.stop()


class Setup:
    """What the Kafka targets share: topics under a benchmark prefix, the campaign defined."""

    def __init__(self, work: Path, quick: bool) -> None:
        self.work = work
        self.quick = quick
        self.definition = s.bench_definition()
        self.bodies = s.write_body_templates(work / "bodies.txt", self.definition, 4000)
        self.prefix = f"bench-c{s.tag()}"
        self._bootstrap: str | None = None
        self.kafka_error: str | None = None

    def bootstrap(self) -> str:
        if self._bootstrap is None:
            if self.kafka_error:
                raise s.BenchUnavailable(self.kafka_error)
            try:
                self._bootstrap = s.kafka_bootstrap()
                self._prepare_kafka(self._bootstrap)
            except s.BenchUnavailable as exc:
                self.kafka_error = str(exc)
                raise
        return self._bootstrap

    def _prepare_kafka(self, bootstrap: str) -> None:
        from kafka.admin import NewTopic

        from runtime.distributed.registry import RegistryPublisher
        from runtime.distributed.topics import admin_client, ensure_topics
        from schemas.settings import Settings
        from stream_processors.faust_topology import Topology

        settings = Settings(kafka_bootstrap=bootstrap, topic_prefix=self.prefix)
        topology = Topology.of(settings)
        ensure_topics(bootstrap, topology)
        admin = admin_client(bootstrap)
        try:
            admin.create_topics([NewTopic(self.naive_topic, settings.raw_partitions, 1)])
        finally:
            admin.close()
        publisher = RegistryPublisher(bootstrap, topology.registry)
        try:
            publisher.define(self.definition)
        finally:
            publisher.close()
        self.raw_topic = topology.raw

    @property
    def naive_topic(self) -> str:
        return f"{self.prefix}.naive"

    def kafka_env(self) -> dict[str, str]:
        return {
            "SURVEY_KAFKA_BOOTSTRAP": self.bootstrap(),
            "SURVEY_TOPIC_PREFIX": self.prefix,
            "SURVEY_HASH_KEY": s.HASH_KEY,
            "BENCH_TOPIC": self.naive_topic,
        }

    def cleanup(self) -> None:
        if self._bootstrap is not None:
            s.delete_topics(self._bootstrap, self.prefix)

    # -- targets ---------------------------------------------------------------------------

    def noop(self, workers: int) -> Target:
        return Target(
            f"noop_{workers}w",
            f"benchmarks/noop_app.py, {workers} uvicorn process(es)",
            workers,
            lambda: _workers_target(
                f"noop_{workers}w", "benchmarks.noop_app:app", workers, self.work
            ),
        )

    def naive(self, workers: int) -> Target:
        @contextlib.contextmanager
        def start() -> Iterator[Running]:
            env = self.kafka_env()
            before = s.topic_end(self.bootstrap(), self.naive_topic)
            with _workers_target(
                f"naive_{workers}w", "benchmarks.naive_fastapi_app:app", workers, self.work, env=env
            ) as running:
                running.log_records = lambda: (
                    s.topic_end(self.bootstrap(), self.naive_topic) - before
                )
                running.uses_kafka = True
                yield running

        return Target(
            f"naive_{workers}w",
            f"benchmarks/naive_fastapi_app.py (FastAPI + pydantic + kafka-python, blocking "
            f"acks=all send), {workers} uvicorn process(es)",
            workers,
            start,
            needs_kafka=True,
        )

    def kafka_factory(
        self, workers: int, variant: Variant | None = None, base_name: str | None = None
    ) -> Target:
        # A variant is named after the target it is compared with (`<that>+<variant>`).
        base = base_name or f"collector_kafka_{workers}w"
        name = base + (f"+{variant.name}" if variant else "")

        @contextlib.contextmanager
        def start() -> Iterator[Running]:
            env = self.kafka_env()
            cwd = s.ROOT
            if variant is not None:
                cwd = variant.cwd or s.ROOT
                if variant.pythonpath:
                    env["PYTHONPATH"] = variant.pythonpath
            before = s.topic_end(self.bootstrap(), self.raw_topic)
            factory = variant.factory if variant else "benchmarks.kafka_collector_app:create_app"
            with _workers_target(
                name, factory, workers, self.work, env=env, factory=True, cwd=cwd
            ) as running:
                running.log_records = lambda: s.topic_end(self.bootstrap(), self.raw_topic) - before
                running.uses_kafka = True
                running.notes["launcher"] = (
                    "benchmarks.serve_workers + kafka_collector_app "
                    "(the wiring of run_collector, one app per process)"
                )
                yield running

        what = f" — variant {variant.name}: {variant.describe()}" if variant else ""
        return Target(
            name,
            f"the Kafka-mode collector (acks=all), {workers} processes sharing the "
            f"port (SO_REUSEPORT){what}",
            workers,
            start,
            needs_kafka=True,
        )

    def kafka_cli(self, workers: int) -> Target:
        @contextlib.contextmanager
        def start() -> Iterator[Running]:
            env = self.kafka_env()
            before = s.topic_end(self.bootstrap(), self.raw_topic)
            port = s.free_port()
            args = [*s.CLI, "collector", "--port", str(port)]
            if workers > 1:
                args += ["--workers", str(workers)]
            proc = s.Proc(
                f"collector_kafka_cli_{workers}w",
                args,
                self.work / f"kafka_cli_{workers}.log",
                env=env,
            )
            try:
                url = f"http://{s.HOST}:{port}"
                _wait_ready(proc, url, 90, repeats=8 * workers)
                yield Running(
                    url,
                    [proc],
                    uses_kafka=True,
                    log_records=lambda: s.topic_end(self.bootstrap(), self.raw_topic) - before,
                    notes={"launcher": " ".join(args[2:])},
                )
            finally:
                proc.stop()

        return Target(
            f"collector_kafka_cli_{workers}w",
            f"`survey-ingest collector` as shipped ({workers} process(es)), acks=all",
            workers,
            start,
            needs_kafka=True,
        )

    def embedded(self) -> Target:
        @contextlib.contextmanager
        def start() -> Iterator[Running]:
            from eventlog.file_log import FileLog

            port = s.free_port()
            data = self.work / f"embedded-{s.tag()}"
            env = {"SURVEY_ADMIN_TOKEN": s.ADMIN_TOKEN, "SURVEY_HASH_KEY": s.HASH_KEY}
            proc = s.Proc(
                "collector_embedded",
                [*s.CLI, "serve", "--port", str(port), "--data-dir", str(data)],
                self.work / "embedded.log",
                env=env,
            )
            running = Running(f"http://{s.HOST}:{port}", [proc], notes={"data_dir": str(data)})
            try:
                _wait_ready(proc, running.url, 120)
                _define(running.url, self.definition)
                yield running
            finally:
                proc.stop(60)
            # Counted once the server has stopped: the log directory is locked while it runs.
            with FileLog(data / "raw") as raw:
                running.notes["log_records_after_stop"] = raw.end_offset

        return Target(
            "collector_embedded",
            "`survey-ingest serve` (collector + processor + chDB + API in one process), "
            "202 after group commit + fdatasync",
            1,
            start,
        )


def _wait_ready(proc: s.Proc, url: str, timeout_s: float, repeats: int = 1) -> None:
    """/readyz answers 200 `repeats` times in a row (several workers: each must be ready)."""

    def ready() -> bool:
        proc.check()
        return all(s.http_status(url + "/readyz") == 200 for _ in range(repeats))

    s.wait_until(f"{proc.name} ready", ready, timeout_s, every_s=0.2)


def _define(url: str, definition: Any) -> None:
    import httpx

    r = httpx.put(
        f"{url}/v1/admin/campaigns/{definition.campaign}",
        json=s.definition_json(definition),
        headers={"authorization": f"Bearer {s.ADMIN_TOKEN}"},
        timeout=60,
    )
    if r.status_code != 200:
        raise RuntimeError(f"defining the campaign failed: {r.status_code} {r.text[:500]}")


def cli_supports_workers() -> bool:
    out = subprocess.run(
        [*s.CLI, "collector", "--help"], capture_output=True, text=True, timeout=60, cwd=s.ROOT
    ).stdout
    return "--workers" in out


def measure(
    target: Target, setup: Setup, seconds: float, warmup_s: float, attempts: int
) -> dict[str, Any]:
    """Start the target, warm it up, run wrk until an undisturbed run (at most `attempts`)."""
    runs: list[dict[str, Any]] = []
    wrk_env = {"BENCH_BODIES": str(setup.bodies), "BENCH_THREADS": str(WRK_THREADS)}
    ok_total = 0
    with target.start() as running:
        warm = s.run_wrk(
            running.url,
            threads=WRK_THREADS,
            connections=WRK_CONNECTIONS,
            seconds=warmup_s,
            script=s.WRK_DIR / "submit.lua",
            env=wrk_env,
        )
        ok_total += warm["ok"]
        for attempt in range(attempts):
            groups: dict[str, Callable[[], Iterable[int]]] = {"server": running.pids}
            if running.uses_kafka:
                groups["kafka_broker"] = s.kafka_pids
            meter = s.CpuMeter(groups).__enter__()
            result = s.run_wrk(
                running.url,
                threads=WRK_THREADS,
                connections=WRK_CONNECTIONS,
                seconds=seconds,
                script=s.WRK_DIR / "submit.lua",
                env=wrk_env,
            )
            meter.stop({"wrk": result["cpu_s"]})
            ok_total += result["ok"]
            result["cpu"] = meter.result
            result["attempt"] = attempt + 1
            runs.append(result)
            s.log(
                f"{target.name}: {result['rps']:,.0f} req/s, p50 {result['p50_us'] / 1e3:.2f} ms, "
                f"p99 {result['p99_us'] / 1e3:.2f} ms, non-2xx {result['non_2xx']}, "
                f"foreign CPU {meter.result['foreign_cores']} cores"
            )
            if not meter.result["disturbed"]:
                break
            if attempt + 1 < attempts:
                s.log(f"{target.name}: disturbed by other processes; repeating in 10 s")
                time.sleep(10)
        counted = running.log_records() if running.log_records is not None else None
    notes = dict(running.notes)
    if counted is None and "log_records_after_stop" in notes:
        counted = notes.pop("log_records_after_stop")
    best = _best(runs)
    return {
        "target": target.name,
        "description": target.description,
        "workers": target.workers,
        "rps": best["rps"],
        "ok_rps": best["ok_rps"],
        "p50_ms": best["p50_us"] / 1e3,
        "p99_ms": best["p99_us"] / 1e3,
        "non_2xx": best["non_2xx"],
        "cpu": best["cpu"],
        "runs": runs,
        "ok_answers_total": ok_total,
        "log_records": counted,
        "every_2xx_in_log": None if counted is None else counted >= ok_total,
        "notes": notes,
    }


def default_variants() -> list[Variant]:
    """Proposals measured in every run beside the code as it is (benchmarks/proposals)."""
    out = [Variant("aiokafka", factory="benchmarks.kafka_collector_app:create_app_aiokafka")]
    overlay = os.environ.get("BENCH_CRC32C_PATH")  # a `pip install --target DIR crc32c`
    if overlay:
        out.append(Variant("crc32c", pythonpath=overlay))
    return out


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    calm = [r for r in runs if not r["cpu"]["disturbed"]]
    if calm:
        return max(calm, key=lambda r: r["ok_rps"])
    return min(runs, key=lambda r: r["cpu"]["foreign_cores"])


def run(
    quick: bool,
    work: Path,
    variants: list[Variant] | None = None,
    only_targets: list[str] | None = None,
) -> dict[str, Any]:
    seconds = 5.0 if quick else 15.0
    warmup = 2.0 if quick else 3.0
    rounds = 1 if quick else 2
    attempts = 2 if quick else 3
    setup = Setup(work, quick)
    targets = [setup.noop(1), setup.noop(2), setup.naive(2), setup.embedded(), setup.kafka_cli(1)]
    workers_flag = False
    try:
        workers_flag = cli_supports_workers()
    except Exception as exc:
        s.log(f"cannot ask the CLI about --workers: {exc}")
    kafka_target = setup.kafka_cli(2) if workers_flag else setup.kafka_factory(2)
    targets.append(kafka_target)
    if variants is None:
        variants = default_variants()
    targets += [setup.kafka_factory(2, v, kafka_target.name) for v in variants]
    if only_targets:
        targets = [t for t in targets if t.name in only_targets]
    per_target: dict[str, list[dict[str, Any]]] = {}
    unavailable: dict[str, str] = {}
    try:
        for round_no in range(rounds):
            for target in targets:
                if target.name in unavailable:
                    continue
                s.log(f"collector round {round_no + 1}/{rounds}: {target.name}")
                try:
                    if target.needs_kafka:
                        setup.bootstrap()
                    measured = measure(target, setup, seconds, warmup, attempts)
                    per_target.setdefault(target.name, []).append(measured)
                except s.BenchUnavailable as exc:
                    unavailable[target.name] = str(exc)
                    s.log(f"{target.name} unavailable: {exc}")
                except Exception as exc:
                    unavailable[target.name] = f"failed: {exc}"
                    s.log(f"{target.name} failed: {exc}")
    finally:
        setup.cleanup()
    results = {
        name: max(rs, key=lambda r: r["ok_rps"]) | {"rounds_rps": [r["ok_rps"] for r in rs]}
        for name, rs in per_target.items()
    }
    kafka_name = "collector_kafka_cli_2w" if workers_flag else "collector_kafka_2w"
    return {
        "settings": {
            "wrk": f"wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{seconds:g}s -s "
            "benchmarks/wrk/submit.lua (BENCH_BODIES: 4000 generated sheets, unique "
            "submission_id + device_id per request)",
            "warmup_s": warmup,
            "rounds": rounds,
            "attempts_if_disturbed": attempts,
            "server_stack": "uvicorn 1 process per worker, uvloop, httptools, lifespan off",
            "cli_has_workers_flag": workers_flag,
            "kafka_multiprocess_target": kafka_name,
        },
        "targets": results,
        "unavailable": unavailable,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME:cwd=DIR;pythonpath=DIR - also measure the Kafka collector so",
    )
    parser.add_argument("--targets", help="comma-separated subset of the targets")
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-collector-", dir=args.work) as tmp:
        result = run(
            args.quick,
            Path(tmp),
            [Variant.parse(v) for v in args.variant] or None,
            args.targets.split(",") if args.targets else None,
        )
    text = json.dumps(result, indent=2, ensure_ascii=False)
    s.emit(text, args.out)


if __name__ == "__main__":
    main()
