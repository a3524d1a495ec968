"""Kafka-mode collector apps as factories, for benchmarks.serve_workers and benchmarks.profile.

`create_app` is the shipped factory (runtime.distributed.collector.create_app, what each
process of `survey-ingest collector --workers N` runs). `create_app_aiokafka` wires the same
RegistryFollower and Collector over the proposed aiokafka raw log (benchmarks/proposals) and
returns once the raw topic and the registry are reachable, so a worker only listens when it can
answer 202.
"""

from __future__ import annotations

import atexit
import time
from typing import Any

from ingest.collector import Collector
from runtime.distributed.registry import RegistryFollower
from schemas.settings import Settings
from stream_processors.faust_topology import Topology

READY_TIMEOUT_S = 60.0


def create_app() -> Collector:
    from runtime.distributed.collector import create_app as shipped

    return shipped()


def create_app_aiokafka() -> Collector:
    """The same collector on the proposed aiokafka raw log (benchmarks/proposals)."""
    from benchmarks.proposals.aiokafka_raw_log import AIOKafkaRawLog

    return _create(AIOKafkaRawLog)


def _create(raw_log: Any) -> Collector:
    settings = Settings()
    topology = Topology.of(settings)
    follower = RegistryFollower(settings.kafka_bootstrap, topology.registry).start()
    raw = raw_log(settings.kafka_bootstrap, topology.raw)
    app = Collector.from_settings(
        settings, raw, lambda: follower.registry.campaigns,
        ready=lambda: raw.healthy() and follower.ready(),
    )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not (raw.healthy() and follower.ready()):
        if time.monotonic() > deadline:
            raise SystemExit(f"raw topic {topology.raw} or registry not reachable in time")
        time.sleep(0.1)

    def close() -> None:
        raw.close(timeout_s=5)
        follower.stop()

    atexit.register(close)
    return app
