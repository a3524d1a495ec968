"""`survey-ingest collector --workers N`: N processes on one port, each 202 backed by one record.

Real Kafka (the session's broker); the collector is the real command, started as a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from core.privacy import keyed_hash
from runtime.distributed.registry import RegistryPublisher
from runtime.distributed.topics import ensure_topics
from schemas.campaign import CampaignDefinition
from schemas.settings import Settings
from stream_processors.faust_topology import Topology
from tests.helpers import campaign_definition, sheet
from tests.integration.distributed_stack import Role, wait_until
from tests.integration.embedded_server import ADMIN, ADMIN_TOKEN, free_port

pytestmark = pytest.mark.integration

CAMPAIGN = "workers-2026"
HASH_KEY = "workers-test-hash-key"
PARTITIONS = 4


@pytest.fixture
def prefix(kafka_bootstrap: str) -> str:
    """A topic prefix of the test's own: topics created, the campaign defined."""
    prefix = f"w{uuid.uuid4().hex[:10]}"
    settings = Settings(kafka_bootstrap=kafka_bootstrap, topic_prefix=prefix,
                        raw_partitions=PARTITIONS)
    topology = Topology.of(settings)
    ensure_topics(kafka_bootstrap, topology)
    publisher = RegistryPublisher(kafka_bootstrap, topology.registry)
    try:
        publisher.define(CampaignDefinition.model_validate(campaign_definition(CAMPAIGN)))
    finally:
        publisher.close()
    return prefix


@pytest.fixture
def start_collector(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> Iterator[Any]:
    started: list[Role] = []

    def start(*args: str, **env: str) -> tuple[Role, str]:
        port = free_port()
        role = Role(
            "collector",
            ["--port", str(port), *args],
            {
                **os.environ,
                "SURVEY_KAFKA_BOOTSTRAP": kafka_bootstrap,
                "SURVEY_TOPIC_PREFIX": prefix,
                "SURVEY_HASH_KEY": HASH_KEY,
                "SURVEY_ADMIN_TOKEN": ADMIN_TOKEN,  # /metrics needs a monitor or admin token
                "PYTHONUNBUFFERED": "1",
                "SURVEY_DRAIN_SECONDS": "0",
                **env,
            },
            tmp_path / f"collector-{port}.log",
        ).start()
        started.append(role)
        url = f"http://127.0.0.1:{port}"
        # Each probe is a new connection, which SO_REUSEPORT may give to either process: ready
        # ten times in a row means every worker is listening and has Kafka and the registry.
        wait_until("collector workers ready", lambda: role.check_alive() and all(
            _status(f"{url}/readyz") == 200 for _ in range(10)), 90)
        return role, url

    yield start
    for role in started:
        role.stop(timeout_s=40)


def test_two_workers_share_the_port_and_every_202_is_in_the_raw_topic_once(
    start_collector: Any, kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "metrics"
    role, url = start_collector("--workers", "2", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    assert role.proc is not None
    workers = _children(role.proc.pid)
    assert len(workers) == 2, workers

    bodies = [sheet(CAMPAIGN) for _ in range(120)]
    for body in bodies:  # one connection per request: the kernel spreads them over the workers
        r = httpx.post(f"{url}/v1/submissions", json=body, timeout=20)
        assert r.status_code == 202, r.text
        assert r.json() == {"submission_id": body["submission_id"], "status": "received"}

    # /metrics, whichever worker answers it, adds up both processes. (A worker counts a request
    # just after answering it: wait, bounded, for the last one.)
    per_worker: dict[int, float] = {}

    def all_counted() -> bool:
        per_worker.update({pid: _accepted_in(metrics_dir, pid) for pid in workers})
        return sum(per_worker.values()) == len(bodies)

    wait_until("every 202 counted", all_counted, 10)
    assert all(n > 0 for n in per_worker.values()), per_worker
    for _ in range(6):
        assert _scraped_accepted(url) == len(bodies)

    records = _raw_records(kafka_bootstrap, Topology.of(
        Settings(topic_prefix=prefix, raw_partitions=PARTITIONS)).raw)
    ids = Counter(json.loads(value)["body"]["submission_id"] for _, value in records)
    assert ids == Counter({b["submission_id"]: 1 for b in bodies})
    by_id = {json.loads(value)["body"]["submission_id"]: (key, json.loads(value))
             for key, value in records}
    for body in bodies:
        key, record = by_id[body["submission_id"]]
        assert key == body["submission_id"].encode()
        assert record["v"] == 1 and record["kind"] == "submission.received"
        assert record["received_at"] and record["client"] == keyed_hash(HASH_KEY, "127.0.0.1")
        assert record["body"]["device_id"] == "h:" + keyed_hash(HASH_KEY, body["device_id"])
        assert record["body"]["answers"] == body["answers"]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_peer_that_is_not_a_trusted_proxy_cannot_spoof_its_address(
    start_collector: Any, workers: str
) -> None:
    # uvicorn, left to itself, believes X-Forwarded-For from 127.0.0.1; the collector trusts
    # no proxy here, so every request below is from 127.0.0.1, whatever the header says.
    _, url = start_collector("--workers", workers, SURVEY_RATE_LIMIT_PER_IP="0.01",
                             SURVEY_TRUSTED_PROXIES="[]")
    codes = [
        httpx.post(f"{url}/v1/submissions", json=sheet(CAMPAIGN),
                   headers={"x-forwarded-for": f"203.0.113.{i}"}, timeout=20).status_code
        for i in range(1, 7)
    ]
    # A burst of one per process (0.01/s refills one in 100 s): the rest are refused.
    assert set(codes) <= {202, 429}, codes
    assert codes.count(202) <= int(workers), codes
    assert codes.count(429) >= 6 - int(workers), codes


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def _accepted_in(metrics_dir: Path, pid: int) -> float:
    """202s one worker counted, from its own metrics files alone."""
    with tempfile.TemporaryDirectory() as alone:
        for file in metrics_dir.glob(f"*_{pid}.db"):
            shutil.copy(file, Path(alone) / file.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=alone)  # type: ignore[no-untyped-call]
        value = registry.get_sample_value("survey_collector_requests_total", {"status": "202"})
    return value or 0.0


def _scraped_accepted(url: str) -> float:
    r = httpx.get(f"{url}/metrics", headers=ADMIN, timeout=10)
    assert r.status_code == 200, r.text
    for line in r.text.splitlines():
        if line.startswith('survey_collector_requests_total{status="202"}'):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no survey_collector_requests_total for 202 in /metrics")


def _raw_records(bootstrap: str, topic: str) -> list[tuple[bytes, bytes]]:
    """Every record of the topic, read up to the end offsets taken now (bounded)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, consumer_timeout_ms=10_000)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: list[tuple[bytes, bytes]] = []
        for message in consumer:
            out.append((message.key, message.value))
            if all(consumer.position(tp) >= ends[tp] for tp in tps):
                break
        assert all(consumer.position(tp) >= ends[tp] for tp in tps), "raw topic not read to end"
        return out
    finally:
        consumer.close()
