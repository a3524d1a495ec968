"""`survey-ingest collector`: the HTTP collector appending to the raw topic on Kafka."""

from __future__ import annotations

import logging

from eventlog.kafka_log import KafkaRawLog
from ingest.collector import Collector
from schemas.settings import Settings
from stream_processors.faust_topology import Topology
from survey_ingest.distributed.registry import RegistryFollower
from survey_ingest.distributed.serving import serve_http

log = logging.getLogger(__name__)


async def run_collector(settings: Settings) -> None:
    topology = Topology.of(settings)
    follower = RegistryFollower(settings.kafka_bootstrap, topology.registry).start()
    raw = KafkaRawLog(settings.kafka_bootstrap, topology.raw)
    app = Collector(
        raw,
        # Read on every request: a campaign defined through any API process is taken here as soon
        # as this process's follower has applied it (a fraction of a second).
        lambda: follower.registry.campaigns,
        hash_key=settings.hash_key,
        ready=lambda: raw.healthy() and follower.ready(),
        rate_limit_per_ip=settings.rate_limit_per_ip,
        rate_limit_per_link=settings.rate_limit_per_link,
        max_in_flight=settings.max_in_flight,
        trusted_proxies=settings.trusted_proxies,
    )
    print(f"survey-ingest collector on http://{settings.host}:{settings.port} -> "
          f"{settings.kafka_bootstrap} {topology.raw}", flush=True)
    try:
        await serve_http(app, settings.host, settings.port)
    finally:
        raw.close()
        follower.stop()
