"""`survey-ingest migrate`: create the Kafka topics, then apply the ClickHouse migrations."""

from __future__ import annotations

import json

from runtime.distributed.topics import ensure_topics
from schemas.settings import Settings
from storage import open_store
from stream_processors.faust_topology import Topology


def migrate(settings: Settings) -> int:
    """Idempotent: existing topics and applied migrations are left alone."""
    created = ensure_topics(settings.kafka_bootstrap, Topology.of(settings))
    store = open_store(settings.clickhouse_url)
    try:
        applied = store.migrate()
    finally:
        store.close()
    print(json.dumps({"topics_created": created, "migrations_applied": applied}))
    return 0
