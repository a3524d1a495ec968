"""A real Prometheus scrapes our processes, loads the real alert rules, and answers every
dashboard query."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import campaign_definition, sheet, status_of
from tests.integration.embedded_server import ADMIN_TOKEN, EmbeddedServer, free_port
from tests.monitoring.promkit import PrometheusServer, dashboard_queries, nonzero_by

# Real servers on loopback: sockets allowed (tests/conftest.py).
pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CAMPAIGN = "c-metrics"

WORKER = """
import sys
from ingest import metrics
from telemetry import metrics_server
requests = int(sys.argv[2])
for _ in range(requests):
    metrics.count_response(202)
if sys.argv[1] != "0":
    metrics_server.start_http_server(int(sys.argv[1]), addr="127.0.0.1", ready=lambda: True)
    print("serving", flush=True)
    sys.stdin.read()
"""


def run_worker(multiproc_dir: Path, port: int, requests: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(port), str(requests)], cwd=REPO, text=True,
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def grafana_to_promql(expr: str) -> str:
    return (expr.replace("$__rate_interval", "1m").replace("${campaign}", "c")
            .replace("$campaign", "c"))


def test_prometheus_scrapes_the_worker_port_summing_every_process_on_the_host(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "multiproc"
    shared.mkdir()
    finished = run_worker(shared, 0, 4)  # a process that already exited still counts
    assert finished.wait(60) == 0, finished.communicate(timeout=10)[1]
    port = free_port()
    serving = run_worker(shared, port, 3)
    prometheus = None
    try:
        assert serving.stdout is not None and serving.stdout.readline().strip() == "serving", (
            serving.communicate(timeout=10)[1]
        )
        prometheus = PrometheusServer(tmp_path / "prom", {"worker": [f"127.0.0.1:{port}"]}).start()
        prometheus.wait_for(
            'sum(survey_collector_requests_total{job="worker",status="202"})',
            lambda r: bool(r) and float(r[0]["value"][1]) == 7,
        )
        prometheus.wait_for('survey_process_ready{job="worker"} == 1', bool)

        # Every dashboard query is valid PromQL to a real server (an error is a failed query).
        for where, expr in dashboard_queries():
            if expr.startswith("label_values("):
                continue
            try:
                prometheus.query(grafana_to_promql(expr))
            except AssertionError as exc:
                raise AssertionError(f"{where}: {exc}") from None

        # The real alert rules load and evaluate without errors.
        deadline = time.monotonic() + 30
        while True:
            rules = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
            if rules and all(r["health"] == "ok" for r in rules):
                break
            unhealthy = [(r["name"], r["health"], r.get("lastError")) for r in rules]
            assert time.monotonic() < deadline, unhealthy
            time.sleep(0.5)
        assert len(rules) == 7
    finally:
        if prometheus is not None:
            prometheus.stop()
        serving.kill()
        serving.wait(10)


@pytest.fixture(scope="module")
def serving(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[EmbeddedServer, PrometheusServer]]:
    """A `survey-ingest serve` that took four sheets (three valid) and one bad envelope, and a
    Prometheus scraping it."""
    tmp = tmp_path_factory.mktemp("serve-metrics")
    server = EmbeddedServer(tmp / "data").start()
    prometheus = None
    try:
        targets = {"collector": [f"127.0.0.1:{server.port}"]}
        prometheus = PrometheusServer(tmp / "prom", targets, bearer=ADMIN_TOKEN).start()
        assert server.define(campaign_definition(CAMPAIGN)).status_code == 200
        sheets: list[dict[str, Any]] = [
            sheet(CAMPAIGN), sheet(CAMPAIGN, "Gd7kQ2xQ"), sheet(CAMPAIGN, "Gx1aB2cD"),
            sheet(CAMPAIGN, "NoSuch12"),  # taken (202), then rejected: unknown_link
        ]
        for body in sheets:
            r = httpx.post(f"{server.base}/v1/submissions", json=body, timeout=10)
            assert r.status_code == 202, r.text
        bad = httpx.post(f"{server.base}/v1/submissions", json={"campaign": CAMPAIGN}, timeout=10)
        assert bad.status_code == 422
        assert [status_of(server, CAMPAIGN, s["submission_id"])["status"] for s in sheets] == [
            "accepted", "accepted", "accepted", "rejected"
        ]
        yield server, prometheus
    finally:
        if prometheus is not None:
            prometheus.stop()
        server.kill()


def test_prometheus_sees_a_running_serve_take_and_judge_answer_sheets(
    serving: tuple[EmbeddedServer, PrometheusServer],
) -> None:
    _, prometheus = serving
    prometheus.wait_for(
        'survey_collector_requests_total{job="collector"}',
        lambda r: nonzero_by(r, "status") == {"202": 4, "422": 1},
    )
    prometheus.wait_for(
        'survey_processor_judged_total{job="collector"}',
        lambda r: nonzero_by(r, "status") == {"accepted": 3, "rejected": 1},
    )
    prometheus.wait_for(
        'survey_processor_rejection_reasons_total{job="collector",reason="unknown_link"} == 1',
        bool,
    )


def test_prometheus_sees_campaign_progress_per_unit_and_province(
    serving: tuple[EmbeddedServer, PrometheusServer],
) -> None:
    _, prometheus = serving
    selector = f'{{job="collector",campaign="{CAMPAIGN}"}}'
    prometheus.wait_for(
        f"survey_unit_valid_samples{selector}",
        lambda r: nonzero_by(r, "unit") == {"gd-cyber": 2, "gx-net": 1}, timeout=10,
    )
    prometheus.wait_for(
        f"survey_province_valid_samples{selector} / survey_province_target_samples{selector}",
        lambda r: nonzero_by(r, "province") == {"44": 2 / 1000, "45": 1 / 400}, timeout=10,
    )
    prometheus.wait_for('survey_process_ready{job="collector"} == 1', bool, timeout=10)
