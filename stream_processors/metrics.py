"""Processor metrics, shared by the embedded processor and the faust agents."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from prometheus_client import Counter, Gauge, Histogram

from schemas.events import SubmissionJudged

JUDGED = Counter("survey_processor_judged_total", "Verdicts by status", ["status"])
REASONS = Counter("survey_processor_rejection_reasons_total", "Reason codes given", ["reason"])
RESENDS = Counter("survey_processor_identical_resends_total", "Identical resends absorbed")
UNREADABLE = Counter("survey_processor_unreadable_events_total", "Raw events this build cannot read")
LAG = Gauge("survey_processor_lag_records", "Raw records not yet judged")
BATCH_SECONDS = Histogram(
    "survey_processor_batch_duration_seconds", "Judge + store time of one batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
FRESHNESS = Histogram(
    "survey_processor_freshness_seconds", "From the collector's receive time to stored and counted",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)


def observe_batch(rows: Sequence[SubmissionJudged], seconds: float) -> None:
    BATCH_SECONDS.observe(seconds)
    now = dt.datetime.now(dt.UTC)
    for row in rows:
        JUDGED.labels(status=row.status).inc()
        for reason in row.reasons:
            REASONS.labels(reason=reason).inc()
    if rows:
        # One sample per batch (its oldest row) keeps this cheap and still shows the worst case.
        FRESHNESS.observe((now - min(r.received_at for r in rows)).total_seconds())
