"""The Kafka topics of the distributed runtime, with their partition counts and configs."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from kafka.admin import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError

from stream_processors.faust_topology import Topology

log = logging.getLogger(__name__)

DAY_MS = 24 * 3600 * 1000
# The raw log is the source of truth: every projection (verdicts, counts, ClickHouse) is rebuilt
# from it by a replay. Keep it well past the 10-day collection window and the reporting weeks
# after it; shorten it only once the campaign's final numbers are signed off.
RAW_RETENTION_MS = 30 * DAY_MS
# Derived topics only bridge the processing steps; a replay rebuilds them from raw.
DERIVED_RETENTION_MS = 7 * DAY_MS


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)


def admin_client(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=bootstrap.split(","), request_timeout_ms=10_000,
        bootstrap_timeout_ms=10_000,
    )


def replication_for(admin: KafkaAdminClient) -> int:
    """Three copies where the cluster has three brokers; fewer on a small (test) cluster."""
    return min(3, len(admin.describe_cluster()["brokers"]))


def topic_specs(topology: Topology, replication: int) -> list[TopicSpec]:
    # With three copies a write needs two of them: one broker may fail without losing a 202.
    durable = {"min.insync.replicas": str(max(1, replication - 1))}
    n = topology.partitions
    derived = {**durable, "retention.ms": str(DERIVED_RETENTION_MS)}
    # Compacted topics keep the latest record per key forever (no time-based deletion).
    compacted = {**durable, "cleanup.policy": "compact"}
    return [
        TopicSpec(topology.raw, n, {**durable, "retention.ms": str(RAW_RETENTION_MS)}),
        TopicSpec(topology.assessed, n, derived),
        TopicSpec(topology.judged, n, derived),
        # One partition: the registry is folded in one total order.
        TopicSpec(topology.registry, 1, compacted),
        TopicSpec(topology.counts, n, compacted),
        # The faust tables' changelogs, created here rather than by the worker: a worker that
        # creates one itself can start before the topic is in its metadata, and faust then
        # fails the first write to the table.
        *(TopicSpec(name, n, compacted) for name in topology.changelogs),
    ]


def ensure_topics(bootstrap: str, topology: Topology) -> list[str]:
    """Create the topics that are missing; existing ones are left as they are. Returns created."""
    admin = admin_client(bootstrap)
    try:
        replication = replication_for(admin)
        existing = set(admin.list_topics())
        created = []
        for spec in topic_specs(topology, replication):
            if spec.name in existing:
                continue
            try:
                admin.create_topics(
                    {spec.name: {"num_partitions": spec.partitions,
                                 "replication_factor": replication, "configs": spec.configs}},
                    wait_for_metadata=True,
                )
            except TopicAlreadyExistsError:
                continue  # another migrate got there first
            created.append(spec.name)
            log.info("created topic %s (%d partitions, %d replicas)", spec.name, spec.partitions,
                     replication)
        return created
    finally:
        admin.close()
