"""Read-side metrics: snapshot age, store queries made for snapshots, view cache use, 304s and
SSE clients.

Labels are bounded: `campaign` (a handful per deployment) on the age only. Counters add up over
the processes of a host (PROMETHEUS_MULTIPROC_DIR); the SSE gauge is a live sum; the age is a
scrape-time figure of the answering process (telemetry/metrics_server.py), worst campaign first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

STORE_QUERIES = Counter(
    "survey_read_store_queries_total",
    "Store queries made by the read side's snapshot poller (rate() gives queries per second)",
)
POLL_FAILURES = Counter(
    "survey_read_poll_failures_total", "Snapshot polls that failed (the previous snapshot stays)"
)
VIEW_HITS = Counter(
    "survey_read_view_cache_hits_total", "Public reads answered from a view already rendered"
)
VIEW_RENDERS = Counter(
    "survey_read_view_renders_total", "Views rendered from a snapshot (once per view per tick)"
)
NOT_MODIFIED = Counter(
    "survey_read_not_modified_total", "Reads answered 304 Not Modified (If-None-Match matched)"
)
SSE_CLIENTS = Gauge(
    "survey_read_sse_clients", "Display screens connected to /live", multiprocess_mode="livesum"
)

AgeSource = Callable[[], list[dict[str, float]]]


class SnapshotAge(Collector):
    """`survey_read_snapshot_age_seconds{campaign}`: seconds since the snapshot's store read."""

    _help = "Seconds since the read model snapshot of a campaign was read from the store"

    def __init__(self, source: AgeSource) -> None:
        self.source = source

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("survey_read_snapshot_age_seconds", self._help, labels=["campaign"])

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "survey_read_snapshot_age_seconds", self._help, labels=["campaign"]
        )
        worst: dict[str, float] = {}
        for ages in self.source():
            for campaign, age in ages.items():
                worst[campaign] = max(age, worst.get(campaign, 0.0))
        for campaign, age in sorted(worst.items()):
            family.add_metric([campaign], age)
        yield family


_registered = False


def register_ages(source: AgeSource) -> None:
    """Register the age collector once per process."""
    global _registered
    if not _registered:
        REGISTRY.register(SnapshotAge(source))
        _registered = True
