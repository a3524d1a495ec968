"""`survey-ingest findings` (or `python -m runtime.distributed.findings`): the distributed
runtime's anomaly findings.

One process per deployment (see stream_processors.findings_consumer): reads the judged topic,
keeps findings in ClickHouse next to the verdicts (migration 0005), and serves its metrics
(`survey_findings_total{kind}`) on --metrics-port. The API serves them at
GET /v1/campaigns/{c}/findings when its Services carry the findings store (extra["findings"]).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from core.anomaly import AnomalyEngine, text_questions_from
from runtime.distributed.registry import RegistryFollower
from schemas.settings import Settings
from storage import open_store
from storage.findings import SqlFindings
from stream_processors.faust_topology import Topology
from stream_processors.findings_consumer import FindingsConsumer, findings_consumer
from telemetry import metrics_server

log = logging.getLogger(__name__)
METRICS_PORT = 8083


def run_findings(settings: Settings, *, metrics_port: int = METRICS_PORT,
                 stop: threading.Event | None = None) -> None:
    topology = Topology.of(settings)
    stop = stop or threading.Event()
    follower = RegistryFollower(settings.kafka_bootstrap, topology.registry).start()
    store = open_store(settings.clickhouse_url)
    consumer = findings_consumer(settings.kafka_bootstrap, topology.judged,
                                 f"{settings.topic_prefix}-findings", settings.sink_batch_rows)
    try:
        if metrics_port:
            metrics_server.start_http_server(metrics_port, ready=follower.ready)
        engine = AnomalyEngine(text_questions=text_questions_from(follower.registry))
        FindingsConsumer(consumer, SqlFindings(store), engine,
                         batch_rows=settings.sink_batch_rows).run(stop)
    finally:
        consumer.close(autocommit=False)
        store.close()
        follower.stop()


def serve_findings(settings: Settings, *, metrics_port: int = METRICS_PORT) -> None:
    """Until SIGTERM or SIGINT."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run_findings(settings, metrics_port=metrics_port, stop=stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--metrics-port", type=int, default=METRICS_PORT,
                        help=f"port for /metrics (default {METRICS_PORT}; 0: none)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    serve_findings(Settings(), metrics_port=args.metrics_port)


if __name__ == "__main__":
    main()
