"""What every /metrics endpoint answers: one process's metrics, or all processes' on this host.

Single process (no PROMETHEUS_MULTIPROC_DIR): the default registry, as prometheus_client has it.

Several processes on one host (PROMETHEUS_MULTIPROC_DIR set, the same directory for all of them,
emptied before they start): prometheus_client then keeps counters, histograms and gauges in
per-process files there, and any process answering a scrape reports the sum over all of them,
including processes that have exited, so counters never go backwards when one restarts. Scrape-time
collectors (process readiness, campaign progress, the link watch) cannot live in those files; they
report the answering process's own view, added to the merged families. Live-mode gauge files of
processes that no longer exist are pruned on every scrape, so a crashed process's in-flight count
does not linger.

Collectors that are wired per endpoint:
- `ready`: `survey_process_ready` 1/0, whether this process's /readyz would answer 200 (for the
  collector: the raw log, i.e. Kafka, is reachable). Prometheus cannot probe /readyz itself without
  a blackbox exporter; this makes the same answer scrapeable.
- `campaigns`: valid-sample counts per unit and per province against their targets, read from
  the store at scrape time (see `CampaignProgress`).

Processes without an HTTP app of their own (the faust workers) call `start_http_server()`, which
serves the same exposition on WORKER_METRICS_PORT (8082).
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client import start_http_server as _start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from core.counting import Count, roll_up
from core.registry import Registry

log = logging.getLogger(__name__)

WORKER_METRICS_PORT = 8082
CONTENT_TYPE = CONTENT_TYPE_LATEST
# prometheus_client decides at import time, from this very variable, whether values go to shared
# files; the exposition must follow the same variable, so it is read here and not from Settings.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Per-process runtime figures of whichever process answered would mislead next to host-wide sums.
_PER_PROCESS_PREFIXES = ("process_", "python_")


class StoreCounts(Protocol):
    def unit_counts(self, campaign: str) -> dict[str, Count]: ...


class CampaignSource(Protocol):
    """What campaign progress needs; api.services.Services provides both attributes."""

    registry: Registry
    store: Any  # a core.ports.Store; only unit_counts() is used


def multiprocess_dir() -> str | None:
    path = os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV.lower())
    return path or None


def exposition(
    *, ready: Callable[[], bool] | None = None, campaigns: CampaignSource | None = None
) -> bytes:
    """The Prometheus text exposition for a /metrics handler (serve it with CONTENT_TYPE).

    With `campaigns` this reads the store: call it off the event loop (asyncio.to_thread).
    """
    extra: list[Collector] = []
    if ready is not None:
        extra.append(ProcessReady(ready))
    if campaigns is not None:
        extra.append(CampaignProgress(campaigns))
    return generate_latest(ScrapeView(extra))


class ScrapeView(Collector):
    """The families one scrape returns: host-wide in multiprocess mode, else this process's."""

    def __init__(self, extra: Iterable[Collector] = ()) -> None:
        self.extra = list(extra)

    def collect(self) -> Iterator[Metric]:
        path = multiprocess_dir()
        if path is None:
            yield from REGISTRY.collect()
        else:
            prune_dead_processes(path)
            merged: list[Metric] = list(
                MultiProcessCollector(None, path=path).collect()  # type: ignore[no-untyped-call]
            )
            yield from merged
            seen = {m.name for m in merged}
            # The default registry still holds this process's metric objects (already in the
            # files, so skipped by name) and its scrape-time collectors (added as they are).
            for family in REGISTRY.collect():
                if family.name not in seen and not family.name.startswith(_PER_PROCESS_PREFIXES):
                    yield family
        for collector in self.extra:
            try:
                yield from collector.collect()
            except Exception:
                # A failing optional collector must not cost the whole scrape.
                log.exception("metrics collector %s failed", type(collector).__name__)


def prune_dead_processes(path: str) -> int:
    """Remove live-mode gauge files whose process is gone; returns how many were removed."""
    removed = 0
    for file in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        pid_text = os.path.basename(file)[: -len(".db")].rsplit("_", 1)[-1]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        try:
            os.remove(file)
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reset_multiprocess_dir() -> None:
    """Empty the shared directory. Only a supervisor may call this, before its processes start:
    files from an earlier run would otherwise be added to this run's counters."""
    path = multiprocess_dir()
    if path is None:
        return
    os.makedirs(path, exist_ok=True)
    for file in glob.glob(os.path.join(path, "*.db")):
        os.remove(file)


class ProcessReady(Collector):
    def __init__(self, ready: Callable[[], bool]) -> None:
        self.ready = ready

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("survey_process_ready", self._help)

    _help = "1 if this process's /readyz answers 200 (collector: the raw log is reachable), else 0"

    def collect(self) -> Iterator[Metric]:
        try:
            ok = bool(self.ready())
        except Exception:
            ok = False
        yield GaugeMetricFamily("survey_process_ready", self._help, value=1.0 if ok else 0.0)


class CampaignProgress(Collector):
    """Valid samples per unit and per province, with their targets, from the store.

    The store's counts are the authoritative ones (deduplicated, survive restarts, rebuilt by a
    replay) and the same the leaderboard shows; counters in the processors could not give
    absolute totals. Labels are bounded by the campaign definition (~135 initiating units plus
    supporting units; ~34 provinces). Every API replica reports the same figures: aggregate with
    max, not sum.
    """

    def __init__(self, source: CampaignSource) -> None:
        self.source = source

    def describe(self) -> Iterator[Metric]:
        yield from self._families().values()

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily]:
        specs = (
            ("survey_unit_valid_samples", "Valid samples credited to a unit", ["campaign", "unit"]),
            ("survey_unit_planned_samples", "Samples a unit plans to collect",
             ["campaign", "unit"]),
            ("survey_unit_info", "A unit's name, kind and province (value 1)",
             ["campaign", "unit", "name", "kind", "province"]),
            ("survey_province_valid_samples", "Valid samples credited to a province's units",
             ["campaign", "province"]),
            ("survey_province_target_samples", "A province's target of valid samples",
             ["campaign", "province"]),
            ("survey_province_info", "A province's name and work region (value 1)",
             ["campaign", "province", "name", "work_region"]),
        )
        return {name: GaugeMetricFamily(name, text, labels=labels) for name, text, labels in specs}

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        registry: Registry = self.source.registry
        store: StoreCounts = self.source.store
        for campaign, state in sorted(registry.campaigns.items()):
            try:
                counts = store.unit_counts(campaign)
            except Exception:
                log.warning("campaign progress: store unreadable for %s", campaign, exc_info=True)
                continue
            units = roll_up(state, counts, "unit")
            for unit_id, unit in state.units.items():
                families["survey_unit_valid_samples"].add_metric(
                    [campaign, unit_id], units[unit_id].valid)
                families["survey_unit_planned_samples"].add_metric(
                    [campaign, unit_id], unit.planned_samples)
                families["survey_unit_info"].add_metric(
                    [campaign, unit_id, unit.name, unit.kind, unit.province], 1)
            provinces = roll_up(state, counts, "province")
            for province_id, province in state.provinces.items():
                families["survey_province_valid_samples"].add_metric(
                    [campaign, province_id], provinces[province_id].valid)
                families["survey_province_target_samples"].add_metric(
                    [campaign, province_id], state.province_target(province_id))
                families["survey_province_info"].add_metric(
                    [campaign, province_id, province.name, province.work_region], 1)
        yield from families.values()


def start_http_server(
    port: int = WORKER_METRICS_PORT,
    addr: str = "0.0.0.0",
    *,
    ready: Callable[[], bool] | None = None,
) -> Any:
    """Serve /metrics from a background thread, for processes with no HTTP app (faust workers).

    Returns (server, thread) as prometheus_client does; `server.shutdown()` stops it.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ScrapeView([ProcessReady(ready)] if ready is not None else []))
    return _start_http_server(port, addr=addr, registry=registry)
