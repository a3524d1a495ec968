"""`survey-ingest collector`: the HTTP collector appending to the raw topic on Kafka.

One process (`run_collector`), or N processes sharing the port (`run_collector_workers`), each
built by `create_app()` from the SURVEY_* environment.
"""

from __future__ import annotations

import atexit
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from eventlog.kafka_log import KafkaRawLog
from runtime.distributed.registry import RegistryFollower
from runtime.distributed.serving import serve_http, serve_workers
from schemas.settings import Settings
from stream_processors.faust_topology import Topology

if TYPE_CHECKING:
    # Imported where the app is built: the supervisor of N workers must not create the
    # collector's metric values itself (they would land in the shared multiprocess directory).
    from ingest.collector import Collector

log = logging.getLogger(__name__)

# How long a worker waits for Kafka and the registry before it listens anyway (answering 503
# and not-ready until they come): long enough for a normal start, short enough that a collector
# started while the broker is away still comes up and says so.
READY_WAIT_S = 10.0


class CollectorSettings(Settings):
    collector_workers: int = 1  # SURVEY_COLLECTOR_WORKERS: processes sharing the port


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


def build_collector(settings: Settings) -> tuple[Collector, Callable[[], None]]:
    """The collector app wired to Kafka, and what closes it (flushes the producer)."""
    from core.access import Authenticator
    from ingest.collector import Collector

    topology = Topology.of(settings)
    follower = RegistryFollower(settings.kafka_bootstrap, topology.registry).start()
    raw = KafkaRawLog(settings.kafka_bootstrap, topology.raw)
    known = _KnownCampaigns(follower)
    app = Collector.from_settings(
        settings, raw, lambda: known, ready=lambda: raw.healthy() and follower.ready(),
        # /metrics: a monitor or admin token (tokens come with the registry topic).
        authenticator=Authenticator(follower.registry, settings.admin_token),
    )

    def close() -> None:
        raw.close()
        follower.stop()

    return app, close


def create_app() -> Collector:
    """One collector worker: Settings from the environment; returns once Kafka and the registry
    answer (or after READY_WAIT_S: it then starts not-ready and answers 503 until they do)."""
    app, close = build_collector(Settings())
    atexit.register(close)
    deadline = time.monotonic() + READY_WAIT_S
    while not app.ready() and time.monotonic() < deadline:
        time.sleep(0.05)
    return app


async def run_collector(settings: Settings) -> None:
    app, close = build_collector(settings)
    print(f"survey-ingest collector on http://{settings.host}:{settings.port} -> "
          f"{settings.kafka_bootstrap} {Topology.of(settings).raw}", flush=True)
    try:
        await serve_http(app, settings.host, settings.port, settings.drain_seconds)
    finally:
        close()


def run_collector_workers(settings: Settings, workers: int) -> int:
    """`workers` collector processes on one port (SO_REUSEPORT), /metrics summed over them."""
    # The workers are new processes: what the command line set reaches them as SURVEY_*.
    env = {
        "SURVEY_HOST": settings.host,
        "SURVEY_PORT": str(settings.port),
        "SURVEY_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "SURVEY_TOPIC_PREFIX": settings.topic_prefix,
    }
    banner = (f"survey-ingest collector on http://{settings.host}:{settings.port} "
              f"({workers} processes) -> {settings.kafka_bootstrap} {Topology.of(settings).raw}")
    return serve_workers("runtime.distributed.collector:create_app", settings.host,
                         settings.port, workers, env, banner)
