"""reconcile finds, names and repairs a count altered by hand; erase leaves nothing behind."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable

from core.counting import Count
from core.ports import RegionFilter
from core.registry import Registry
from runtime.reconcile import reconcile
from schemas.campaign import CampaignDefinition, SingleQuestion
from schemas.events import (
    CampaignDefined,
    FindingEvidence,
    FindingRaised,
    ReviewDecided,
    SubmissionJudged,
)
from storage import SqlStore
from storage.findings import SqlFindings
from tests.storage.conftest import RECEIVED_AT

Judged = Callable[..., SubmissionJudged]
Q2 = SingleQuestion(id="q2", type="single", options=["a", "b", "c"])


def sid(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012d}"


def registry_with(*decisions: ReviewDecided) -> Registry:
    registry = Registry()
    defn = {"campaign": "2023", "phases": [{"name": "collection", "start": "2023-09-13",
            "end": "2023-09-22", "counts": True}],
            "questionnaire": {"version": "2023.1", "questions": [{"id": "q2", "type": "single",
                                                                   "options": ["a", "b", "c"]}]}}
    registry.apply(CampaignDefined(campaign="2023", defined_at=RECEIVED_AT,
                                   definition=CampaignDefinition.model_validate(defn)))
    for d in decisions:
        registry.apply(d)
    return registry


def invalidate(*ids: str) -> ReviewDecided:
    return ReviewDecided(decision_id="d1", campaign="2023", action="invalid", reason="padding",
                         reviewer="r", decided_at=RECEIVED_AT + dt.timedelta(days=1),
                         submission_ids=ids)


def filled(store: SqlStore, judged: Judged) -> Registry:
    store.insert_judged([
        judged(0), judged(1), judged(2, status="rejected", reasons=("too_fast",)),
        judged(3, link_code="Other", channel="qq"),
        judged(4, fingerprint="other", submission_id=sid(1), first_of_id=False,
               status="rejected", reasons=("duplicate_submission",)),
    ])
    decision = invalidate(sid(0))
    store.apply_review(decision)
    return registry_with(decision)


def run(store: SqlStore, registry: Registry, *, repair: bool = False) -> tuple[int, list[dict]]:
    out = io.StringIO()
    code = reconcile(store, registry, repair_them=repair, out=out)
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_count_row_altered_by_hand_is_found_named_and_repaired(
    store: SqlStore, judged: Judged
) -> None:
    """Catches: reconcile checking only unit_counts (the altered rows below are in three other
    tables), or a --repair that does not rebuild them."""
    registry = filled(store, judged)
    assert run(store, registry) == (0, [])
    before = store.unit_counts("2023")
    distribution = store.answer_distribution("2023", Q2, RegionFilter(unit="gd-cyber"))
    day = (RECEIVED_AT + dt.timedelta(hours=8)).date()
    store._insert("link_hour_counts", ("campaign", "link_code", "channel", "unit", "day", "hour",
                                       "valid", "rejected", "test", "conflicts"),
                  [("2023", "Other", "qq", "gd-cyber", day, 10, 1, 0, 0, 0)])
    store._insert("answer_counts", ("campaign", "question", "province", "work_region", "unit",
                                    "link_code", "channel", "day", "value", "n"),
                  [("2023", "q2", "44", "south", "gd-cyber", "Gd7kQ2xP", "wechat", day,
                    '"c"', 5)])
    store._execute(f"ALTER TABLE review_sheets DELETE WHERE submission_id = '{sid(0)}'")
    from storage.upkeep import wait_for_mutations
    wait_for_mutations(store._execute, store.database, "review_sheets")

    code, found = run(store, registry)
    assert code == 1
    named = {(d["table"], tuple(sorted(d["scope"].items()))) for d in found}
    assert ("link_hour_counts", (("channel", "qq"), ("day", str(day)), ("hour", "10"),
                                 ("link_code", "Other"), ("unit", "gd-cyber"))) in named
    assert any(t == "answer_counts" and ("value", '"c"') in scope for t, scope in named)
    assert ("review_sheets", (("decision_id", "d1"), ("submission_id", sid(0)))) in named

    assert run(store, registry, repair=True)[0] == 0
    assert run(store, registry) == (0, [])
    assert store.unit_counts("2023") == before
    assert store.answer_distribution("2023", Q2, RegionFilter(unit="gd-cyber")) == distribution


def test_an_erased_sheet_leaves_no_row_count_review_or_sample(
    store: SqlStore, judged: Judged
) -> None:
    """Catches: erase deleting only the verdicts (review rows, counts, answer counts and
    finding samples left behind would make reconcile fail or the counts stay)."""
    registry = filled(store, judged)
    findings = SqlFindings(store)
    findings.insert_findings([FindingRaised(
        finding_id="f1", revision=1, anomaly="burst", detector_version="1", campaign="2023",
        link_code="Gd7kQ2xP", unit="gd-cyber", window_start=RECEIVED_AT,
        window_end=RECEIVED_AT + dt.timedelta(hours=1), raised_at=RECEIVED_AT, score=3.0,
        evidence=FindingEvidence(observed=3, expected=1.0, total=3,
                                 sample_submission_ids=(sid(0), sid(1))),
    )])
    assert store.unit_counts("2023") == {"gd-cyber": Count(valid=2, rejected=2)}
    for erased in (sid(0), sid(1)):  # a reviewed sheet, then one with a conflicting resend
        assert store.erase("2023", f"campaign = '2023' AND submission_id = '{erased}'") >= 1
    assert store.unit_counts("2023") == {"gd-cyber": Count(valid=1, rejected=1)}
    (total,) = store.breakdown("2023", [], RegionFilter())
    assert (total.valid, total.rejected, total.conflicts) == (1, 1, 0)
    assert store.answer_distribution("2023", Q2, RegionFilter(unit="gd-cyber")).accepted == 1
    assert store.review_rows("2023") == {}
    assert store.submission_status("2023", sid(0)) is None
    (finding,) = findings.findings("2023")
    assert finding.evidence.sample_submission_ids == ()
    assert run(store, registry) == (0, [])
