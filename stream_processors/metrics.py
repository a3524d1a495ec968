"""Processor metrics, shared by the embedded processor and the faust agents.

Every label here is bounded: status and reason are enums, partition by the raw topic's partition
count, and link codes appear only in the capped watch list of `LinkWatch` (never one series per
link). Gauges name their multiprocess mode so several processes sharing PROMETHEUS_MULTIPROC_DIR
add up correctly; the mode is ignored when one process serves its own metrics.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
import warnings
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import get_args

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from core.reasons import Reason
from schemas.events import Status, SubmissionJudged

JUDGED = Counter("survey_processor_judged_total", "Verdicts by status", ["status"])
REASONS = Counter("survey_processor_rejection_reasons_total", "Reason codes given", ["reason"])
RESENDS = Counter("survey_processor_identical_resends_total", "Identical resends absorbed")
UNREADABLE = Counter(
    "survey_processor_unreadable_events_total", "Raw events this build cannot read"
)
LAG = Gauge(
    "survey_processor_lag_records", "Raw records not yet judged (embedded runtime: the whole log)",
    multiprocess_mode="livesum",
)
# Newest write wins across processes: after a rebalance the partition's new owner keeps writing,
# so a former owner's last value fades out instead of being summed or maxed in.
CONSUMER_LAG = Gauge(
    "survey_processor_consumer_lag_records",
    "Records in a raw-topic partition not yet judged and committed (high watermark - committed)",
    ["partition"], multiprocess_mode="livemostrecent",
)
BATCH_SECONDS = Histogram(
    "survey_processor_batch_duration_seconds", "Judge + store time of one batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
FRESHNESS = Histogram(
    "survey_processor_freshness_seconds", "From the collector's receive time to stored and counted",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)

# The ClickHouse sink. A "success" is an insert the store acknowledged; each failed attempt counts
# once in failures, and each attempt repeated after a failure once in retries.
SINK_ROWS = Counter("survey_sink_rows_total", "Rows the store acknowledged")
SINK_BATCH_ROWS = Histogram(
    "survey_sink_batch_rows", "Rows per acknowledged insert",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000),
)
SINK_INSERT_SECONDS = Histogram(
    "survey_sink_insert_duration_seconds", "Time of one acknowledged insert",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SINK_FAILURES = Counter("survey_sink_failures_total", "Insert attempts that failed")
SINK_RETRIES = Counter("survey_sink_retries_total", "Insert attempts repeated after a failure")
SINK_LAST_SUCCESS = Gauge(
    "survey_sink_last_success_timestamp_seconds", "Unix time of the last acknowledged insert",
    multiprocess_mode="livemax",
)


# Every bounded label value exists from the start, at zero, so the first increment of each shows
# up in rate() instead of being the series' first sample.
for _status in get_args(Status):
    JUDGED.labels(status=_status)
for _reason in Reason:
    REASONS.labels(reason=_reason.value)


def observe_batch(rows: Sequence[SubmissionJudged], seconds: float) -> None:
    BATCH_SECONDS.observe(seconds)
    now = dt.datetime.now(dt.UTC)
    # One labelled inc per label and batch, not per row: ~10 ms -> ~4 ms per 5,000 rows.
    statuses = Tally(row.status for row in rows)
    reasons = Tally(reason for row in rows for reason in row.reasons)
    for status, n in statuses.items():
        JUDGED.labels(status=status).inc(n)
    for reason, n in reasons.items():
        REASONS.labels(reason=reason).inc(n)
    if rows:
        # One sample per batch (its oldest row) keeps this cheap and still shows the worst case.
        FRESHNESS.observe((now - min(r.received_at for r in rows)).total_seconds())
        LINK_WATCH.observe(rows, now.timestamp())


def set_consumer_lag(partition: int, records: int) -> None:
    CONSUMER_LAG.labels(partition=str(partition)).set(max(0, records))


def forget_partition(partition: int) -> None:
    """Call when a partition is revoked, so this process stops reporting a stale lag for it."""
    child = CONSUMER_LAG.labels(partition=str(partition))
    # In multiprocess mode series cannot be removed; a zero (newest-write-wins) is the next best.
    child.set(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        CONSUMER_LAG.remove(str(partition))


def observe_sink_insert(rows: int, seconds: float) -> None:
    SINK_ROWS.inc(rows)
    SINK_BATCH_ROWS.observe(rows)
    SINK_INSERT_SECONDS.observe(seconds)
    SINK_LAST_SUCCESS.set(time.time())


def count_sink_failure() -> None:
    SINK_FAILURES.inc()


def count_sink_retry() -> None:
    SINK_RETRIES.inc()


class _LinkRates:
    """One link's recent counts in a ring of time buckets, and its decayed history before them."""

    __slots__ = ("counts", "head", "history", "history_t", "unit")

    def __init__(self, unit: str, buckets: int, head: int) -> None:
        self.unit = unit
        self.counts = [0] * buckets
        self.head = head  # number of the newest bucket in the ring
        self.history = 0.0  # decayed count of the buckets that left the ring, as of history_t
        self.history_t = 0.0


@dataclass(frozen=True)
class WatchedLink:
    campaign: str
    link: str
    unit: str
    recent_per_s: float
    baseline_per_s: float


class LinkWatch:
    """Per-link submission rates against each link's own history, exposed only for the few links
    running far above it.

    One series per link would be unbounded (links are many, and attackers post made-up codes),
    so the rates are kept here, in memory, for attributed links only (bounded by the campaign
    definitions and by `max_links`), and Prometheus sees at most `top_n` links per campaign: those
    whose recent rate is at least `enter_ratio` times their baseline. In a quiet campaign no link
    series exists at all. A link leaves the list below `exit_ratio`, so a spike does not flap.

    `recent` is the rate over the last `bucket_s * buckets` seconds (10 minutes); `baseline` the
    rate before that window, exponentially weighted over ~`history_s` (6 h) and bias-corrected
    for the time this process has been watching, so a spike never dilutes its own baseline and a
    fresh process has no baseline (hence no alarm) for its first window. Raw-topic partitions are
    keyed by submission id, so each worker sees the same share of every link: ratios hold for
    the whole, rates are the worker's share (sum them across workers).
    """

    def __init__(
        self,
        *,
        bucket_s: float = 60.0,
        buckets: int = 10,
        history_s: float = 6 * 3600.0,
        min_recent_per_s: float = 0.02,
        baseline_floor_per_s: float = 1 / 3600,
        enter_ratio: float = 3.0,
        exit_ratio: float = 2.0,
        top_n: int = 10,
        max_links: int = 200_000,
        started_at: float | None = None,
    ) -> None:
        self.bucket_s, self.buckets, self.history_s = bucket_s, buckets, history_s
        self.min_recent_per_s = min_recent_per_s
        self.baseline_floor_per_s = baseline_floor_per_s
        self.enter_ratio, self.exit_ratio = enter_ratio, exit_ratio
        self.top_n, self.max_links = top_n, max_links
        self.started_at = time.time() if started_at is None else started_at
        self._links: dict[tuple[str, str], _LinkRates] = {}
        self._watched: set[tuple[str, str]] = set()
        self._lock = threading.Lock()  # observe() runs in worker threads, collect() in the scraper

    def observe(self, rows: Iterable[SubmissionJudged], now: float) -> None:
        with self._lock:
            for row in rows:
                if row.unit and row.link_code:
                    # Replays carry old receive times: they land in the distant past, not now.
                    at = min(row.received_at.timestamp(), now)
                    self.add(row.campaign, row.link_code, row.unit, at)

    def add(self, campaign: str, link: str, unit: str, at: float) -> None:
        bucket = math.floor(at / self.bucket_s)
        state = self._links.get((campaign, link))
        if state is None:
            if len(self._links) >= self.max_links:
                return
            state = self._links[(campaign, link)] = _LinkRates(unit, self.buckets, bucket)
        if bucket > state.head:
            # Buckets leaving the ring join the history, oldest first.
            first, last = state.head - self.buckets + 1, min(state.head, bucket - self.buckets)
            for old in range(first, last + 1):
                slot = old % self.buckets
                if state.counts[slot]:
                    end = (old + 1) * self.bucket_s
                    state.history, state.history_t = self._fold(
                        state.history, state.history_t, state.counts[slot], end
                    )
                    state.counts[slot] = 0
            state.head = bucket
        if bucket > state.head - self.buckets:
            state.counts[bucket % self.buckets] += 1
        else:
            state.history, state.history_t = self._fold(
                state.history, state.history_t, 1, (bucket + 1) * self.bucket_s
            )

    def _fold(self, history: float, history_t: float, count: int, at: float) -> tuple[float, float]:
        """Add `count` events at time `at` to a decayed count expressed at `history_t`."""
        if at >= history_t:
            return history * math.exp((history_t - at) / self.history_s) + count, at
        return history + count * math.exp((at - history_t) / self.history_s), history_t

    def rates(self, state: _LinkRates, now: float) -> tuple[float, float | None]:
        """(recent, baseline) per second at `now`; baseline None while there is no history yet."""
        current = math.floor(now / self.bucket_s)
        window_start = (current - self.buckets + 1) * self.bucket_s
        recent_count = 0
        history, history_t = state.history, state.history_t
        for k in range(state.head - self.buckets + 1, state.head + 1):
            c = state.counts[k % self.buckets]
            if not c:
                continue
            if k > current - self.buckets:
                recent_count += c
            else:  # aged out since the last add: history by now
                history, history_t = self._fold(history, history_t, c, (k + 1) * self.bucket_s)
        window = now - max(window_start, self.started_at)
        recent = recent_count / window if window > 0 else 0.0
        watched_before = window_start - self.started_at
        if watched_before <= 0:
            return recent, None
        at_window = history * math.exp(min(0.0, history_t - window_start) / self.history_s)
        baseline = at_window / (self.history_s * -math.expm1(-watched_before / self.history_s))
        return recent, baseline

    def watched(self, now: float | None = None) -> list[WatchedLink]:
        now = time.time() if now is None else now
        by_campaign: dict[str, list[tuple[float, WatchedLink]]] = {}
        with self._lock:
            for key, state in self._links.items():
                if state.head <= math.floor(now / self.bucket_s) - self.buckets:
                    continue  # nothing in the recent window
                recent, baseline = self.rates(state, now)
                if baseline is None or recent < self.min_recent_per_s / 2:
                    continue
                ratio = recent / max(baseline, self.baseline_floor_per_s)
                was = key in self._watched
                if ratio >= (self.exit_ratio if was else self.enter_ratio) and (
                    was or recent >= self.min_recent_per_s
                ):
                    by_campaign.setdefault(key[0], []).append(
                        (ratio, WatchedLink(key[0], key[1], state.unit, recent, baseline))
                    )
            chosen = [
                link
                for candidates in by_campaign.values()
                for _, link in sorted(candidates, key=lambda c: (-c[0], c[1].link))[: self.top_n]
            ]
            self._watched = {(w.campaign, w.link) for w in chosen}
        return chosen

    def tracked(self) -> dict[str, int]:
        with self._lock:
            counts: dict[str, int] = {}
            for campaign, _ in self._links:
                counts[campaign] = counts.get(campaign, 0) + 1
            return counts

    # A prometheus_client collector: computed at scrape time, so a link that calms down leaves
    # the list on the next scrape even if no batch arrives in between.
    def describe(self) -> Iterator[Metric]:
        yield from self._families((), {})

    def collect(self) -> Iterator[Metric]:
        yield from self._families(self.watched(), self.tracked())

    def _families(
        self, watched: Sequence[WatchedLink], tracked_links: dict[str, int]
    ) -> Iterator[Metric]:
        labels = ["campaign", "link", "unit"]
        recent = GaugeMetricFamily(
            "survey_link_watch_recent_per_second",
            "Watched links only: submissions per second, last 10 min (this process's share)",
            labels=labels,
        )
        baseline = GaugeMetricFamily(
            "survey_link_watch_baseline_per_second",
            "Watched links only: the link's rate before that, ~6 h weighted (this process's share)",
            labels=labels,
        )
        for w in watched:
            recent.add_metric([w.campaign, w.link, w.unit], w.recent_per_s)
            baseline.add_metric([w.campaign, w.link, w.unit], w.baseline_per_s)
        tracked = GaugeMetricFamily(
            "survey_link_watch_tracked_links", "Links whose rates this process keeps",
            labels=["campaign"],
        )
        for campaign, n in sorted(tracked_links.items()):
            tracked.add_metric([campaign], n)
        yield recent
        yield baseline
        yield tracked


LINK_WATCH = LinkWatch()
REGISTRY.register(LINK_WATCH)
