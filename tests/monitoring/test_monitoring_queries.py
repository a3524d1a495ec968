"""Every metric the dashboard and the alerts read is one our code defines, by its exposed name."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.monitoring.promkit import (
    DASHBOARD,
    MONITORING,
    PROMETHEUS_SERIES,
    alert_exprs,
    dashboard_queries,
    exposed_series_names,
    metric_names,
)


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (status) (rate(survey_collector_requests_total{status=~"5.."}[5m]))',
         {"survey_collector_requests_total"}),
        ("histogram_quantile(0.95, sum by (le) (rate(x_seconds_bucket[$__rate_interval])))",
         {"x_seconds_bucket"}),
        ('a / (max by (p) (b{c="$campaign"}) > 0)'
         " * on (p) group_left (name) max by (p, name) (c_info)",
         {"a", "b", "c_info"}),
        ('label_replace(sum(lag) > 1e4 and sum(deriv(lag[10m])) > 0, "partition", "all", "", "")',
         {"lag"}),
        ("label_values(survey_unit_valid_samples, campaign)", {"survey_unit_valid_samples"}),
        ('up{job=~"collector|api"} == 0 unless on() vector(1) offset 5m', {"up"}),
    ],
)
def test_metric_names_are_read_out_of_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_the_dashboard_has_the_panels_operators_asked_for() -> None:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    titles = " | ".join(p["title"] for p in dash["panels"]).lower()
    for wanted in ("by http status", "valid vs rejected", "by reason", "lag", "freshness",
                   "top units", "province progress", "links far above"):
        assert wanted in titles
    assert dash["uid"] == "survey-ingest"
    assert {v["name"] for v in dash["templating"]["list"]} == {"datasource", "campaign"}


def test_every_dashboard_query_reads_metrics_our_code_defines() -> None:
    known = exposed_series_names() | PROMETHEUS_SERIES
    queries = dashboard_queries()
    assert len(queries) >= 20
    unknown = sorted(
        (where, name) for where, expr in queries for name in metric_names(expr) if name not in known
    )
    assert not unknown, f"dashboard reads metrics nothing defines: {unknown}"
    for where, expr in queries:
        assert metric_names(expr), f"{where}: no metric found in {expr!r}"


def test_every_alert_reads_metrics_our_code_defines() -> None:
    known = exposed_series_names() | PROMETHEUS_SERIES
    unknown = sorted(
        (where, name) for where, expr in alert_exprs() for name in metric_names(expr)
        if name not in known
    )
    assert not unknown, f"alerts read metrics nothing defines: {unknown}"


def test_grafana_provisioning_points_at_prometheus_and_the_dashboard_folder() -> None:
    prov = MONITORING / "grafana" / "provisioning"
    sources = yaml.safe_load((prov / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert [(s["type"], s["uid"]) for s in sources] == [("prometheus", "prometheus")]
    providers = yaml.safe_load((prov / "dashboards" / "survey-ingest.yml").read_text())["providers"]
    assert providers[0]["type"] == "file" and providers[0]["options"]["path"]
