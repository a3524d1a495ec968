"""Test helpers for the monitoring config: the Prometheus binaries, a real server, PromQL names."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import yaml

from tests.helpers import stop_process, unavailable, wait_ready
from tests.integration.embedded_server import free_port

MONITORING = Path(__file__).resolve().parents[2] / "infra" / "monitoring"
DASHBOARD = MONITORING / "grafana" / "survey-ingest.json"
ALERTS = MONITORING / "alerts.yml"
# Series Prometheus itself makes, and what alert rules may read besides our own metrics.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS"}


def binary(name: str) -> str:
    """Path of a Prometheus binary. Under CI a missing one fails the test, never skips it."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} not found on PATH; run `bash infra/monitoring/install.sh`"
    unavailable(message)


# --- PromQL ------------------------------------------------------------------------------------

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
             "offset", "bool", "inf", "nan", "start", "end"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (or a Grafana `label_values(...)` query) reads.

    Not a parser: strings, label matchers, ranges, grouping clauses and Grafana variables are
    stripped, then every identifier not followed by "(" is a metric name.
    """
    label_values = re.fullmatch(r"\s*label_values\((.*)\)\s*", expr, re.S)
    if label_values:
        inner = label_values.group(1)
        # label_values(metric_or_selector, label): the last argument is a label, not a metric.
        expr = inner.rsplit(",", 1)[0] if "," in inner else ""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    e = re.sub(r"\$\{[^}]*\}|\$\w+", " ", e)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()", e):
        token = m.group(1)
        if token.lower() not in _KEYWORDS:
            names.add(token)
    return names


def dashboard_queries(path: Path = DASHBOARD) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and templating query of a Grafana dashboard."""
    dash = json.loads(path.read_text(encoding="utf-8"))
    found: list[tuple[str, str]] = []

    def walk(panels: Iterable[dict[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    where = f"panel {panel.get('title')!r} {target.get('refId')}"
                    found.append((where, target["expr"]))
            walk(panel.get("panels", []))

    walk(dash.get("panels", []))
    for var in dash.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var.get("query")
            text = query.get("query") if isinstance(query, dict) else query
            if text:
                found.append((f"variable ${var['name']}", text))
    return found


def alert_exprs(path: Path = ALERTS) -> list[tuple[str, str]]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        (f"alert {rule.get('alert') or rule.get('record')}", rule["expr"])
        for group in doc["groups"] for rule in group["rules"]
    ]


def exposed_series_names() -> set[str]:
    """Every sample name our code can expose, read from the metric objects themselves."""
    from prometheus_client import REGISTRY

    import api.app  # noqa: F401 - defines QUERY_LATENCY
    import ingest.metrics  # noqa: F401
    import stream_processors.metrics  # noqa: F401
    from core.registry import Registry
    from telemetry import metrics_server

    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("", "_count", "_sum", "_created"),
        "info": ("_info",),
    }
    families = list(REGISTRY.collect())
    families += list(metrics_server.ProcessReady(lambda: True).describe())
    no_campaigns = SimpleNamespace(registry=Registry(), store=None)
    families += list(metrics_server.CampaignProgress(no_campaigns).describe())
    names: set[str] = set()
    for family in families:
        for suffix in suffixes.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


# --- a real server -----------------------------------------------------------------------------


class PrometheusServer:
    """A Prometheus on a free port, scraping `targets` ({job: [host:port]}) every second."""

    def __init__(
        self, workdir: Path, targets: dict[str, list[str]], *, rules: bool = True,
        bearer: str | None = None,
    ) -> None:
        self.binary = binary("prometheus")
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s",
            },
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": hosts}],
                 # /metrics of serve, collector and api needs a monitor (or admin) token.
                 **({"authorization": {"type": "Bearer", "credentials": bearer}}
                    if bearer else {})}
                for job, hosts in targets.items()
            ],
        }
        if rules:
            # The real alert rules, so a rule a server would refuse fails here too.
            config["rule_files"] = [str(ALERTS)]
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.log_path = workdir / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> PrometheusServer:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it for its lifetime
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={self.config_path}",
             f"--storage.tsdb.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        wait_ready(
            self.proc, f"{self.base}/-/ready", "prometheus", timeout, self.log_tail, self.stop, 0.2
        )
        return self

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        stop_process(self.proc, 15)

    def api(self, path: str, **params: str) -> Any:
        r = httpx.get(f"{self.base}/api/v1/{path}", params=params, timeout=10)
        payload = r.json()
        if payload.get("status") != "success":
            raise AssertionError(f"{path} {params}: {r.status_code} {payload}")
        return payload["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        return list(data["result"])

    def wait_for(
        self, expr: str, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        """Query until `done(result)`, bounded; the last result is in the failure message."""
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while True:
            result = self.query(expr)
            if done(result):
                return result
            if time.monotonic() > deadline:
                targets = self.api("targets")["activeTargets"]
                health = [(t["scrapeUrl"], t["health"], t["lastError"]) for t in targets]
                raise AssertionError(
                    f"{expr!r} never satisfied in {timeout}s: {result}; targets {health}"
                )
            time.sleep(0.5)


def nonzero_by(result: list[dict[str, Any]], label: str) -> dict[str, float]:
    """{label value: sample value} of an instant-query result, zeros left out."""
    values = {r["metric"].get(label, ""): float(r["value"][1]) for r in result}
    return {k: v for k, v in values.items() if v}
