"""The infra/ scripts themselves: start, start again (no-op), use, restart with data kept, wipe.

Each test runs its own servers on free ports under a temporary SURVEY_INFRA_DATA, so it neither
meets nor disturbs the servers other tests or `make stack` started. The jar cache
(SURVEY_INFRA_HOME) is the shared one: install.sh fills it once per machine.
"""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def run(script: str, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(["bash", str(ROOT / "infra" / script), *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, f"{script} {args} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout.strip()


@pytest.fixture
def base_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "SURVEY_INFRA_DATA": str(tmp_path / "infra"),
            "SURVEY_INFRA_TIMEOUT": "90"}


@pytest.fixture
def kafka_env(base_env: dict[str, str]) -> Iterator[dict[str, str]]:
    port, controller = free_ports(2)
    env = {**base_env, "SURVEY_KAFKA_PORT": str(port),
           "SURVEY_KAFKA_CONTROLLER_PORT": str(controller)}
    yield env
    run("kafka/stop.sh", env, "--wipe")


def test_kafka_lifecycle(kafka_env: dict[str, str]) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    port = kafka_env["SURVEY_KAFKA_PORT"]
    home = Path(kafka_env["SURVEY_INFRA_DATA"]) / f"kafka-{port}"
    bootstrap = run("kafka/start.sh", kafka_env)
    assert bootstrap == f"127.0.0.1:{port}"
    pid = (home / "kafka.pid").read_text()
    assert run("kafka/start.sh", kafka_env) == bootstrap  # already running: no second broker
    assert (home / "kafka.pid").read_text() == pid

    topic = f"infra-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for i in range(5):
        producer.send(topic, f"m{i}".encode())
    producer.flush()
    producer.close()

    run("kafka/stop.sh", kafka_env)
    assert not (home / "kafka.pid").exists()
    run("kafka/stop.sh", kafka_env)  # idempotent
    run("kafka/start.sh", kafka_env)  # the messages survive a restart

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=topic,
                             auto_offset_reset="earliest", consumer_timeout_ms=20000)
    got = sorted(m.value for _, m in zip(range(5), consumer, strict=False))
    consumer.close()
    assert got == [f"m{i}".encode() for i in range(5)]

    run("kafka/stop.sh", kafka_env, "--wipe")
    assert not home.exists()


def test_clickhouse_two_servers(base_env: dict[str, str]) -> None:
    from clickhouse_driver import Client

    tcp_a, http_a, tcp_b, http_b = free_ports(4)
    envs = [{**base_env, "SURVEY_CLICKHOUSE_TCP_PORT": str(t),
             "SURVEY_CLICKHOUSE_HTTP_PORT": str(h)}
            for t, h in ((tcp_a, http_a), (tcp_b, http_b))]
    try:
        for env in envs:
            port = env["SURVEY_CLICKHOUSE_TCP_PORT"]
            assert run("clickhouse/start.sh", env) == f"clickhouse://127.0.0.1:{port}"
            assert run("clickhouse/start.sh", env) == f"clickhouse://127.0.0.1:{port}"
        for i, tcp in enumerate((tcp_a, tcp_b)):
            client = Client("127.0.0.1", port=tcp)
            assert client.execute("SELECT timezone()")[0][0].endswith("UTC")  # Etc/UTC on 18.16
            client.execute("CREATE TABLE default.kept (n UInt8) ENGINE = MergeTree ORDER BY n")
            client.execute("INSERT INTO default.kept VALUES", [(i,)])
            client.disconnect()

        run("clickhouse/stop.sh", envs[0])
        run("clickhouse/stop.sh", envs[0])  # idempotent
        run("clickhouse/start.sh", envs[0])
        client = Client("127.0.0.1", port=tcp_a)
        assert client.execute("SELECT n FROM default.kept") == [(0,)]
        client.disconnect()
    finally:
        for env in envs:
            run("clickhouse/stop.sh", env, "--wipe")
    assert not (Path(base_env["SURVEY_INFRA_DATA"]) / f"clickhouse-{tcp_a}").exists()
