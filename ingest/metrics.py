"""Collector metrics, with label children bound once so the hot path only increments.

Base units and bounded labels: `status` is the HTTP status the collector answered (a fixed set,
plus 499 for a client that went away). Several collector processes on one host aggregate through
PROMETHEUS_MULTIPROC_DIR (see telemetry.metrics_server); the in-flight gauge sums the live ones.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "survey_collector_requests_total", "Submission requests answered, by HTTP status", ["status"]
)
LATENCY = Histogram(
    "survey_collector_request_duration_seconds",
    "Time from request start to response, submissions endpoint",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
APPEND_LATENCY = Histogram(
    "survey_collector_log_append_duration_seconds",
    "Time the raw log took to durably acknowledge a write",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
PAYLOAD_BYTES = Counter(
    "survey_collector_payload_bytes_total", "Bytes of accepted submission bodies"
)
IN_FLIGHT = Gauge(
    "survey_collector_in_flight", "Submissions waiting for the raw log", multiprocess_mode="livesum"
)

_BY_STATUS = {
    code: REQUESTS.labels(status=str(code))
    for code in (202, 400, 404, 405, 413, 415, 422, 429, 499, 503)
}


def count_response(status: int) -> None:
    child = _BY_STATUS.get(status)
    (child or REQUESTS.labels(status=str(status))).inc()
