"""Metric names follow Prometheus conventions, labels stay bounded, and the scrape-time collectors
(link watch, campaign progress, readiness, multiprocess merge) report what they should."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

import api.app  # noqa: F401 - defines QUERY_LATENCY in the default registry
import ingest.metrics  # noqa: F401
from core.counting import Count
from core.registry import Registry
from schemas.campaign import CampaignDefinition
from schemas.events import CampaignDefined, SubmissionJudged
from stream_processors import metrics as processor_metrics
from stream_processors.metrics import LinkWatch
from telemetry import metrics_server
from tests.helpers import campaign_definition

REPO = Path(__file__).resolve().parents[2]
BOUNDED_LABELS = {"status", "reason", "partition", "endpoint", "campaign", "unit", "province",
                  "name", "kind", "work_region"}


def our_families() -> list[object]:
    families = [f for f in REGISTRY.collect() if f.name.startswith("survey_")]
    families += list(metrics_server.ProcessReady(lambda: True).describe())
    families += list(
        metrics_server.CampaignProgress(SimpleNamespace(registry=Registry(), store=None)).describe()
    )
    return families


def test_metric_names_follow_prometheus_conventions() -> None:
    families = our_families()
    assert len(families) >= 25
    for family in families:
        assert family.name.startswith("survey_"), family.name
        if family.type == "counter":
            # prometheus_client strips _total from the family; the exposed sample has it.
            assert not family.name.endswith("_total"), family.name
        if family.type == "histogram":
            assert family.name.endswith(("_seconds", "_bytes", "_rows")), family.name
        assert not family.name.endswith(("_milliseconds", "_ms", "_kb", "_mb")), family.name


def test_labels_are_bounded_and_link_codes_only_appear_in_the_capped_watch_list() -> None:
    families = our_families()
    for family in families:
        labels = {k for s in family.samples for k in s.labels} - {"le"}
        watch = family.name.startswith("survey_link_watch_")
        allowed = BOUNDED_LABELS | ({"link"} if watch else set())
        assert labels <= allowed, (family.name, labels - allowed)
    names = {f.name for f in families}
    assert "survey_link_submissions" not in names  # one series per link: forbidden


def test_the_requested_metrics_exist() -> None:
    names = {f.name for f in our_families()}
    assert {
        "survey_collector_requests", "survey_collector_request_duration_seconds",
        "survey_collector_log_append_duration_seconds", "survey_collector_payload_bytes",
        "survey_collector_in_flight", "survey_processor_judged",
        "survey_processor_rejection_reasons", "survey_processor_consumer_lag_records",
        "survey_sink_rows", "survey_sink_batch_rows", "survey_sink_insert_duration_seconds",
        "survey_sink_failures", "survey_sink_retries", "survey_unit_valid_samples",
        "survey_province_valid_samples", "survey_province_target_samples", "survey_process_ready",
        "survey_link_watch_recent_per_second", "survey_link_watch_baseline_per_second",
    } <= names


def test_sink_and_lag_helpers_move_their_metrics() -> None:
    def value(name: str, **labels: str) -> float:
        got = REGISTRY.get_sample_value(name, labels)
        return 0.0 if got is None else got

    rows, failures = value("survey_sink_rows_total"), value("survey_sink_failures_total")
    processor_metrics.observe_sink_insert(500, 0.05)
    processor_metrics.count_sink_failure()
    processor_metrics.count_sink_retry()
    assert value("survey_sink_rows_total") == rows + 500
    assert value("survey_sink_failures_total") == failures + 1
    assert value("survey_sink_last_success_timestamp_seconds") > 0
    processor_metrics.set_consumer_lag(3, 1234)
    assert value("survey_processor_consumer_lag_records", partition="3") == 1234
    processor_metrics.forget_partition(3)
    gone = REGISTRY.get_sample_value("survey_processor_consumer_lag_records", {"partition": "3"})
    assert gone is None


# --- the link watch -----------------------------------------------------------------------------

HOUR = 3600.0


def steady(watch: LinkWatch, links: list[str], per_s: float, start: float, end: float) -> None:
    step = 1 / per_s
    for i, link in enumerate(links):
        t = start + i * step / len(links)
        while t < end:
            watch.add("c", link, f"unit-{link}", t)
            t += step


def test_steady_links_are_not_watched() -> None:
    watch = LinkWatch(started_at=0)
    steady(watch, [f"L{i}" for i in range(20)], 0.05, 0, 6 * HOUR)
    assert watch.watched(6 * HOUR) == []
    assert watch.tracked() == {"c": 20}


def test_a_link_twenty_times_its_history_is_watched_with_its_unit() -> None:
    watch = LinkWatch(started_at=0)
    steady(watch, ["calm", "farm"], 0.05, 0, 6 * HOUR)
    steady(watch, ["farm"], 1.0, 6 * HOUR, 6 * HOUR + 600)
    steady(watch, ["calm"], 0.05, 6 * HOUR, 6 * HOUR + 600)
    [hit] = watch.watched(6 * HOUR + 600)
    assert (hit.campaign, hit.link, hit.unit) == ("c", "farm", "unit-farm")
    assert hit.recent_per_s > 0.8
    assert hit.recent_per_s > 10 * hit.baseline_per_s


def test_a_brand_new_process_raises_nothing_before_it_has_history() -> None:
    watch = LinkWatch(started_at=0)
    steady(watch, ["a", "b"], 0.5, 0, 120)
    assert watch.watched(120) == []


def test_a_link_silent_for_hours_that_bursts_is_watched() -> None:
    watch = LinkWatch(started_at=0)
    steady(watch, ["busy"], 0.05, 0, 6 * HOUR)
    steady(watch, ["sleeper"], 0.2, 5 * HOUR + 3000, 5 * HOUR + 3600)  # then nothing for 5 hours...
    steady(watch, ["sleeper"], 0.2, 0.5 * HOUR, 0.5 * HOUR + 60)  # ...an out-of-order old batch
    steady(watch, ["busy"], 0.05, 6 * HOUR, 6 * HOUR + 600)
    steady(watch, ["sleeper"], 0.3, 6 * HOUR, 6 * HOUR + 600)
    assert [w.link for w in watch.watched(6 * HOUR + 600)] == ["sleeper"]


def test_the_watch_list_is_capped_per_campaign() -> None:
    watch = LinkWatch(started_at=0, top_n=5)
    links = [f"L{i}" for i in range(30)]
    steady(watch, links, 0.01, 0, 6 * HOUR)
    steady(watch, links, 0.5, 6 * HOUR, 6 * HOUR + 600)
    assert len(watch.watched(6 * HOUR + 600)) == 5


def test_a_spike_stays_watched_until_well_below_the_entry_ratio() -> None:
    watch = LinkWatch(started_at=0, enter_ratio=3.0, exit_ratio=2.0)
    steady(watch, ["x"], 0.05, 0, 6 * HOUR)
    steady(watch, ["x"], 0.5, 6 * HOUR, 6 * HOUR + 900)
    assert [w.link for w in watch.watched(6 * HOUR + 900)] == ["x"]
    steady(watch, ["x"], 0.05, 6 * HOUR + 900, 9 * HOUR)
    assert watch.watched(9 * HOUR) == []


def judged(link: str, unit: str, received_at: dt.datetime) -> SubmissionJudged:
    return SubmissionJudged(
        submission_id=f"s-{received_at.timestamp()}-{link}", campaign="c", fingerprint="f",
        source_position="0:1", received_at=received_at, status="accepted",
        rules_version="t", link_code=link, unit=unit,
    )


def test_unattributed_and_replayed_rows_do_not_feed_the_watch() -> None:
    watch = LinkWatch(started_at=0)
    now = dt.datetime(2026, 9, 15, 12, tzinfo=dt.UTC)
    made_up = [judged(f"NoSuch{i}", "", now) for i in range(100)]  # unknown links: no unit
    replayed = [judged("old", "u", now - dt.timedelta(days=3)) for _ in range(500)]
    watch.observe(made_up + replayed, now.timestamp())
    assert watch.tracked() == {"c": 1}
    assert watch.watched(now.timestamp()) == []


def test_observe_batch_feeds_the_watch_exposed_in_the_default_registry() -> None:
    now = dt.datetime.now(dt.UTC)
    processor_metrics.observe_batch([judged("Gd7kQ2xP", "gd-cyber", now)], 0.01)
    assert processor_metrics.LINK_WATCH.tracked().get("c", 0) >= 1
    assert REGISTRY.get_sample_value("survey_link_watch_tracked_links", {"campaign": "c"}) >= 1


# --- campaign progress and readiness -------------------------------------------------------------


class FakeStore:
    def __init__(self, counts: dict[str, Count] | None) -> None:
        self.counts = counts

    def unit_counts(self, campaign: str) -> dict[str, Count]:
        if self.counts is None:
            raise ConnectionError("store down")
        return self.counts


def registry_with(campaign: str) -> Registry:
    registry = Registry()
    definition = CampaignDefinition.model_validate(campaign_definition(campaign))
    registry.apply(CampaignDefined(campaign=campaign, defined_at=dt.datetime.now(dt.UTC),
                                   definition=definition))
    return registry


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }


def test_campaign_progress_reports_units_and_provinces_against_targets() -> None:
    store = FakeStore({"gd-cyber": Count(valid=5, rejected=2), "gx-net": Count(valid=3)})
    source = SimpleNamespace(registry=registry_with("c1"), store=store)
    got = samples(metrics_server.exposition(campaigns=source).decode())
    assert got[("survey_unit_valid_samples", (("campaign", "c1"), ("unit", "gd-cyber")))] == 5
    assert got[("survey_unit_valid_samples", (("campaign", "c1"), ("unit", "sh-uni")))] == 0
    assert got[("survey_unit_planned_samples", (("campaign", "c1"), ("unit", "gd-cyber")))] == 500
    assert got[("survey_province_valid_samples", (("campaign", "c1"), ("province", "44")))] == 5
    assert got[("survey_province_target_samples", (("campaign", "c1"), ("province", "44")))] == 1000
    assert got[("survey_province_valid_samples", (("campaign", "c1"), ("province", "45")))] == 3
    info = ("survey_province_info", (("campaign", "c1"), ("name", "广东"), ("province", "44"),
                                     ("work_region", "south")))
    assert got[info] == 1


def test_an_unreadable_store_costs_the_progress_gauges_not_the_scrape() -> None:
    source = SimpleNamespace(registry=registry_with("c1"), store=FakeStore(None))
    text = metrics_server.exposition(campaigns=source, ready=lambda: False).decode()
    got = samples(text)
    assert not any(name == "survey_unit_valid_samples" for name, _ in got)
    assert got[("survey_process_ready", ())] == 0
    assert any(name == "survey_collector_requests_total" for name, _ in got)


def test_readiness_that_raises_reads_as_not_ready() -> None:
    def broken() -> bool:
        raise RuntimeError("boom")

    def ready_value(ready: object) -> float:
        text = metrics_server.exposition(ready=ready).decode()  # type: ignore[arg-type]
        return samples(text)[("survey_process_ready", ())]

    assert ready_value(broken) == 0
    assert ready_value(lambda: True) == 1


# --- several processes on one host ----------------------------------------------------------------

CHILD = """
import sys
from ingest import metrics
import stream_processors.metrics  # its counters go to the files, its link watch is scrape-time
requests, in_flight, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
for _ in range(requests):
    metrics.count_response(202)
metrics.count_response(503)
metrics.IN_FLIGHT.inc(in_flight)
if mode == "print":
    from telemetry.metrics_server import exposition
    sys.stdout.write(exposition(ready=lambda: True).decode())
elif mode == "hold":
    print("holding", flush=True)
    sys.stdin.read()
"""


def child(multiproc_dir: Path, *args: object, hold: bool = False) -> subprocess.Popen[str]:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *map(str, args)], cwd=REPO, env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def test_multiprocess_mode_sums_every_process_and_forgets_dead_ones_gauges(tmp_path: Path) -> None:
    alive = child(tmp_path, 3, 2, "hold")
    try:
        assert alive.stdout is not None and alive.stdout.readline().strip() == "holding"
        exited = child(tmp_path, 4, 5, "exit")
        assert exited.wait(60) == 0, exited.stderr.read() if exited.stderr else ""
        scraper = child(tmp_path, 0, 0, "print")
        out, err = scraper.communicate(timeout=60)
        assert scraper.returncode == 0, err
    finally:
        alive.kill()
        alive.wait(10)
    got = samples(out)
    # Counters: every process that ever ran (3 + 4 + 0), so a restart never lowers them.
    assert got[("survey_collector_requests_total", (("status", "202"),))] == 7
    assert got[("survey_collector_requests_total", (("status", "503"),))] == 3
    # In-flight: live processes only (the exited one's 5 is gone), with no pid label.
    assert got[("survey_collector_in_flight", ())] == 2
    assert got[("survey_process_ready", ())] == 1
    assert got[("survey_processor_judged_total", (("status", "accepted"),))] == 0
    assert "# TYPE survey_link_watch_tracked_links gauge" in out
    assert not any(name.startswith(("process_", "python_")) for name, _ in got)
    types = [line for line in out.splitlines() if line.startswith("# TYPE ")]
    assert len(types) == len(set(types)), "a family was exposed twice"
