"""The Prometheus config and alert rules pass promtool, and every alert is tested both ways."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.monitoring.promkit import ALERTS, MONITORING, binary


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("promtool"), *args], cwd=MONITORING, capture_output=True, text=True, timeout=120,
    )


def test_a_missing_binary_fails_under_ci_and_only_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"install\.sh"):
        binary("promtool-that-does-not-exist")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        binary("promtool-that-does-not-exist")


def test_prometheus_config_is_valid_and_loads_the_alert_rules(tmp_path: Path) -> None:
    # As deployed: next to the file of the `monitor` token it scrapes /metrics with.
    for name in ("prometheus.yml", "alerts.yml"):
        shutil.copy(MONITORING / name, tmp_path / name)
    (tmp_path / "monitor.token").write_text("sik_" + "m" * 43)
    done = subprocess.run([binary("promtool"), "check", "config", "prometheus.yml"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 rule files found" in done.stdout + done.stderr
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    scraped = {job["job_name"]: job.get("authorization") for job in config["scrape_configs"]}
    for job in ("collector", "api"):  # /metrics behind a monitor token (CONTRACT §7)
        assert scraped[job] == {"type": "Bearer", "credentials_file": "monitor.token"}, job


def test_alert_rules_are_valid() -> None:
    done = promtool("check", "rules", "alerts.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_alert_rule_unit_tests_pass() -> None:
    done = promtool("test", "rules", "alerts_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


def test_install_script_is_idempotent() -> None:
    binary("prometheus")  # installed already (by this script, in `make test`)
    done = subprocess.run(["bash", str(MONITORING / "install.sh")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "already installed" in done.stdout


def test_every_alert_is_shown_firing_and_not_firing() -> None:
    alerts = {
        rule["alert"]
        for group in yaml.safe_load(ALERTS.read_text())["groups"]
        for rule in group["rules"] if "alert" in rule
    }
    tests = yaml.safe_load((MONITORING / "alerts_test.yml").read_text())["tests"]
    fires: set[str] = set()
    quiet: set[str] = set()
    for test in tests:
        for case in test.get("alert_rule_test", []):
            (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    assert alerts == {
        "SurveyCollectorErrorRateHigh", "SurveyCollectorLogUnreachable", "SurveyConsumerLagGrowing",
        "SurveyFreshnessObjectiveMissed", "SurveySinkFailing", "SurveyLinkRateSpike",
        "SurveyTargetDown",
    }
    assert alerts - fires == set(), "alerts never shown firing"
    assert alerts - quiet == set(), "alerts never shown staying quiet"


def test_every_alert_has_a_severity_and_a_summary() -> None:
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]
