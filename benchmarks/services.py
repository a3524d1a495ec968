"""The real services the benchmarks use: Kafka and ClickHouse started by infra/ scripts (a no-op
when they run), their clients, their processes, and topic and database housekeeping."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks.common import HOST, ROOT, BenchUnavailable, log

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


def kafka_tools_classpath() -> str:
    """The classpath of Kafka's own tools (ProducerPerformance) at the broker's version, as
    infra/bench/install.sh (`make bench-install`) fetches them."""
    pom = (ROOT / "infra" / "kafka" / "pom.xml").read_text()
    found = re.search(r"<kafka\.version>(.+?)</kafka\.version>", pom)
    if found is None:
        raise BenchUnavailable("no <kafka.version> in infra/kafka/pom.xml")
    home = Path(os.environ.get("SURVEY_INFRA_HOME", Path.home() / ".cache" / "survey-ingest"))
    libs = home / f"kafka-tools-{found.group(1)}" / "libs"
    if not (libs / ".complete").exists():
        raise BenchUnavailable(f"kafka-tools not in {libs}: run `make bench-install`")
    return f"{libs}/*"
