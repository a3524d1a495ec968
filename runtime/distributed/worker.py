"""`survey-ingest worker`: the faust app (judging) plus the ClickHouse sink, in one process.

The sink is a kafka-python consumer loop on its own thread (see stream_processors.sink for why
it is not a faust agent); the registry follower is another thread. Scale out by starting more
workers: faust and the sink's consumer group share the partitions among them.
"""

from __future__ import annotations

import logging
import threading

import faust
from kafka.admin import KafkaAdminClient

from core.registry import Registry
from core.review import ReviewApplier
from runtime.distributed.registry import RegistryFollower
from runtime.distributed.topics import admin_client, replication_for
from schemas.settings import Settings
from storage import open_store
from stream_processors.faust_app import build_app
from stream_processors.faust_topology import Topology
from stream_processors.sink import JudgedSink, sink_consumer
from stream_processors.table_dir import claim_worker_dir, reset_if_changelogs_changed
from telemetry import metrics_server

log = logging.getLogger(__name__)


class _SinkThread:
    """Runs the sink until stopped; a consumer that fails is replaced (nothing was committed)."""

    def __init__(
        self, settings: Settings, topology: Topology, instance_id: str | None,
        registry: Registry | None = None,
    ) -> None:
        self.registry = registry  # for review decisions (core.review.ReviewApplier)
        self.settings = settings
        self.topology = topology
        self.instance_id = instance_id
        self.stop = threading.Event()
        self.sink: JudgedSink | None = None
        self._thread = threading.Thread(target=self._run, name="sink", daemon=True)

    def healthy(self) -> bool:
        """Running, and its last insert (if any) went through."""
        return self.sink is not None and self.sink.healthy

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout_s: float) -> None:
        self.stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        s = self.settings
        store = open_store(s.clickhouse_url)
        try:
            while not self.stop.is_set():
                consumer = None
                try:
                    consumer = sink_consumer(
                        s.kafka_bootstrap, self.topology.judged, self.topology.sink_group,
                        s.sink_batch_rows,
                        f"{self.instance_id}-sink" if self.instance_id else None,
                    )
                    reviews = (
                        ReviewApplier(store, self.registry.reviews) if self.registry else None
                    )
                    self.sink = JudgedSink(consumer, store, batch_rows=s.sink_batch_rows,
                                           batch_seconds=s.sink_batch_seconds,
                                           after_insert=reviews.after_insert if reviews else None)
                    self.sink.run(self.stop)
                except Exception:
                    log.exception("sink failed; starting it again")
                    self.sink = None
                    self.stop.wait(1.0)
                finally:
                    if consumer is not None:
                        consumer.close(autocommit=False)
        finally:
            store.close()


def run_worker(
    settings: Settings, *, instance_id: str | None = None, metrics_port: int = 0
) -> None:
    topology = Topology.of(settings)
    # This worker's directory for its tables, locked for as long as it runs: never another
    # worker's on the same machine (stream_processors.table_dir).
    claimed = claim_worker_dir(settings.data_dir, topology.app_id, instance_id)
    admin = admin_client(settings.kafka_bootstrap)
    try:
        replication = replication_for(admin)
        identity = changelog_identity(admin, topology)
    finally:
        admin.close()
    reset_if_changelogs_changed(claimed.path, identity)
    log.info("worker tables (%s) in %s", settings.table_store, claimed.path)
    follower = RegistryFollower(settings.kafka_bootstrap, topology.registry).start()
    app = build_app(settings, follower.registry, follower.wait_synced_after,
                    replication=replication, instance_id=instance_id, datadir=claimed.path)
    started = threading.Event()

    @app.task  # type: ignore[untyped-decorator]
    async def _started() -> None:
        # App tasks run once the tables are recovered from their changelogs.
        started.set()
        log.info("worker ready: tables recovered, judging %s", topology.raw)

    sink = _SinkThread(settings, topology, instance_id, follower.registry)
    sink.start()

    def ready() -> bool:
        return started.is_set() and follower.ready() and sink.healthy()

    if metrics_port:
        metrics_server.start_http_server(metrics_port, ready=ready)
    worker = faust.Worker(app, loglevel="INFO", quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    finally:
        sink.join(30)
        follower.stop()
        claimed.release()


def changelog_identity(admin: KafkaAdminClient, topology: Topology) -> dict[str, str]:
    """What the tables on disk were built from: the cluster and each changelog topic's id."""
    identity = {"cluster": str(admin.describe_cluster().get("cluster_id") or "")}
    try:
        described = admin.describe_topics(list(topology.changelogs))
    except Exception as exc:  # a missing topic: faust fails on it itself, with its own error
        log.warning("could not describe the changelog topics: %r", exc)
        described = []
    for topic in described:
        identity[str(topic["name"])] = str(topic.get("topic_id") or "")
    return identity
