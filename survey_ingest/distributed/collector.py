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


class _KnownCampaigns:
    """What the collector checks a campaign against, read on every request.

    A campaign defined through any API process is known here as soon as this process's follower
    has applied it (a fraction of a second). Until the follower has read the registry, no campaign
    can be called unknown: the request goes on to the append, which answers for itself (202, or
    503 while Kafka is unreachable), and judging rejects an unknown campaign later.
    """

    def __init__(self, follower: RegistryFollower) -> None:
        self.follower = follower

    def __contains__(self, campaign: object) -> bool:
        return campaign in self.follower.registry.campaigns or not self.follower.ready()


async def run_collector(settings: Settings) -> None:
    topology = Topology.of(settings)
    follower = RegistryFollower(settings.kafka_bootstrap, topology.registry).start()
    raw = KafkaRawLog(settings.kafka_bootstrap, topology.raw)
    known = _KnownCampaigns(follower)
    app = Collector(
        raw,
        lambda: known,
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
