"""Anomaly detection on generated campaigns with injected padding (simulation.padding).

Precision and recall are over sheets: a sheet is flagged for a scenario when a finding of one of
the kinds expected for it (padding.EXPECTED_KINDS) covers it (core.anomaly.scope). The bounds
asserted here are the ones stated in the README ("Anomaly findings"), below the figures measured
with these seeds so that a small change in the generator does not flap them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from core.anomaly import AnomalyConfig, AnomalyEngine
from core.anomaly.scope import latest
from schemas.campaign import CampaignDefinition, TextQuestion, load_campaign_file
from schemas.events import FindingRaised, SubmissionJudged
from simulation.padding import (
    DEFAULT_SCENARIOS,
    Measurement,
    judge_all,
    measure,
    simulate,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "simulation" / "examples" / "campaign.yaml"
HASH_KEY = "anomaly-test-key"
DAYS, HONEST_PER_DAY = 3, 12_000

# Stated bounds (README, "Anomaly findings").
MIN_PRECISION = {"bot_farm": 0.85, "network_burst": 0.85, "opinion_ring": 0.9, "speeders": 0.9}
MIN_RECALL = {"bot_farm": 0.95, "network_burst": 0.95, "opinion_ring": 0.75, "speeders": 0.95}
MAX_HONEST_FALSE_POSITIVE_RATE = 0.005  # share of honest sheets any finding covers


@cache
def definition() -> CampaignDefinition:
    return load_campaign_file(str(EXAMPLE))


def engine() -> AnomalyEngine:
    text_ids = frozenset(
        q.id for q in definition().questionnaire.questions if isinstance(q, TextQuestion)
    )
    return AnomalyEngine(AnomalyConfig(), text_questions=lambda campaign, version: text_ids)


def run(seed: int, padded: bool) -> tuple[AnomalyEngine, list[tuple[SubmissionJudged, str | None]],
                                          list[FindingRaised]]:
    sheets = simulate(
        definition(), seed=seed, days=DAYS, honest_per_day=HONEST_PER_DAY,
        scenarios=DEFAULT_SCENARIOS if padded else (), hash_key=HASH_KEY,
    )
    verdicts = judge_all(sheets, definition(), HASH_KEY)
    eng = engine()
    findings = [f for judged, _ in verdicts for f in eng.observe(judged)]
    return eng, verdicts, findings


@pytest.fixture(scope="module")
def padded() -> tuple[Measurement, list[FindingRaised], list[tuple[SubmissionJudged, str | None]]]:
    eng, verdicts, findings = run(seed=7, padded=True)
    measured = measure(eng, verdicts, findings)
    print("\n" + measured.table())
    return measured, findings, verdicts


@pytest.mark.parametrize("scenario", sorted(MIN_PRECISION))
def test_injected_padding_is_found_with_stated_precision_and_recall(
    padded: tuple[Measurement, list[FindingRaised], list[tuple[SubmissionJudged, str | None]]],
    scenario: str,
) -> None:
    measured, _, _ = padded
    score = measured.scenarios[scenario]
    assert score.sheets > 0
    assert score.precision >= MIN_PRECISION[scenario], measured.table()
    assert score.recall >= MIN_RECALL[scenario], measured.table()


def test_each_scenario_is_found_by_the_detectors_meant_for_it(
    padded: tuple[Measurement, list[FindingRaised], list[tuple[SubmissionJudged, str | None]]],
) -> None:
    measured, _, _ = padded
    kinds = {s.name: set(s.kinds) for s in measured.scenarios.values()}
    assert {"device_cluster", "network_cluster", "answer_cluster"} <= kinds["bot_farm"]
    assert {"burst", "network_cluster"} <= kinds["network_burst"]
    assert kinds["opinion_ring"] == {"text_near_duplicate"}
    assert kinds["speeders"] == {"speeders"}


def test_findings_carry_their_evidence(
    padded: tuple[Measurement, list[FindingRaised], list[tuple[SubmissionJudged, str | None]]],
) -> None:
    measured, _, verdicts = padded
    labels = {j.submission_id: label for j, label in verdicts}
    for f in measured.findings:
        ev = f.evidence
        assert ev.observed > 0 and ev.sample_submission_ids and f.score > 0
        assert all(s in labels for s in ev.sample_submission_ids)
        assert f.window_start <= f.raised_at <= f.window_end
        if f.anomaly == "network_cluster":
            assert ev.network and f.link_code
        if f.anomaly == "device_cluster":
            assert ev.device_hash
        if f.anomaly == "text_near_duplicate":
            assert ev.text_signature and len(ev.links) > 1  # a ring across links
        if f.anomaly == "time_of_day":
            assert ev.hours


def test_honest_traffic_stays_under_the_stated_false_positive_rate() -> None:
    eng, verdicts, findings = run(seed=11, padded=False)
    measured = measure(eng, verdicts, findings)
    assert measured.honest == len(verdicts) > 30_000
    assert measured.false_positive_rate <= MAX_HONEST_FALSE_POSITIVE_RATE, [
        (f.anomaly, f.link_code, f.evidence) for f in measured.findings
    ]


def test_a_replay_raises_the_same_findings_and_leaves_verdicts_alone(
    padded: tuple[Measurement, list[FindingRaised], list[tuple[SubmissionJudged, str | None]]],
) -> None:
    _, findings, verdicts = padded
    before = [j.model_dump() for j, _ in verdicts[:2000]]
    again = engine()
    replayed = [f for judged, _ in verdicts for f in again.observe(judged)]
    assert replayed == findings
    assert [j.model_dump() for j, _ in verdicts[:2000]] == before
    assert len(latest(findings)) < len(findings) or findings  # revisions grow, ids stay
