"""The distributed findings role on the real services: verdicts on the judged topic (Kafka) are
read by `run_findings` (what `survey-ingest findings` runs), and the findings land in ClickHouse:
the same kinds on the same links as the engine raises in process over the same verdicts."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaProducer

from core.anomaly import AnomalyEngine
from runtime.distributed.findings import run_findings
from runtime.distributed.topics import ensure_topics
from schemas.campaign import TextQuestion, load_campaign_file
from schemas.events import encode_event
from schemas.settings import Settings
from simulation.padding import NetworkBurst, OpinionRing, judge_all, simulate
from storage import open_store
from storage.findings import SqlFindings
from stream_processors.faust_topology import Topology
from tests.storage.conftest import with_database

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "simulation" / "examples" / "campaign.yaml"


def test_findings_from_the_judged_topic_reach_clickhouse(
    kafka_bootstrap: str, clickhouse_url: str
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    settings = Settings(kafka_bootstrap=kafka_bootstrap, topic_prefix=prefix, raw_partitions=3)
    topology = Topology.of(settings)
    ensure_topics(kafka_bootstrap, topology)
    definition = load_campaign_file(str(EXAMPLE))
    sheets = simulate(definition, seed=3, days=1, honest_per_day=1500,
                      scenarios=(OpinionRing(sheets=30, links=4, days=1),
                                 NetworkBurst(sheets=120, day=0, start_hour=20)))
    verdicts = [j for j, _ in judge_all(sheets, definition, "k")]
    text_ids = frozenset(
        q.id for q in definition.questionnaire.questions if isinstance(q, TextQuestion)
    )

    def engine() -> AnomalyEngine:
        return AnomalyEngine(text_questions=lambda campaign, version: text_ids)

    reference = engine()
    # Partitions are read interleaved as polled (each batch in receive order), so a cluster's
    # first member, hence its id, may differ from the in-process run: compare what was found.
    expected = {(f.anomaly, f.link_code)
                for f in reference.observe_many(sorted(verdicts, key=lambda j: j.received_at))}
    assert {"text_near_duplicate", "network_cluster"} <= {kind for kind, _ in expected}

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap.split(","), acks="all")
    for j in verdicts:
        producer.send(topology.judged, key=j.submission_id.encode(), value=encode_event(j))
    producer.flush(60)
    producer.close()

    database = f"findings_{prefix}"
    settings = settings.model_copy(
        update={"clickhouse_url": with_database(clickhouse_url, database)}
    )
    store = open_store(settings.clickhouse_url)
    store.migrate()
    stop = threading.Event()
    thread = threading.Thread(
        target=run_findings, args=(settings,), kwargs={"metrics_port": 0, "stop": stop},
        daemon=True,
    )
    thread.start()
    try:
        stored: set[tuple[str, str]] = set()
        deadline = time.monotonic() + 120
        while stored != expected and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.5)
            stored = {(f.anomaly, f.link_code)
                      for f in SqlFindings(store).findings(definition.campaign, limit=5000)}
        assert stored == expected
        assert SqlFindings(store).findings(definition.campaign, anomaly="network_cluster")
    finally:
        stop.set()
        thread.join(30)
        store._execute(f"DROP DATABASE IF EXISTS {database}")
        store.close()
