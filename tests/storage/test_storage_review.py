"""Review decisions, the median and the final ranking on both stores (chDB and ClickHouse)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from core import freeze
from core.counting import Count, tally
from core.registry import Registry
from core.review import (
    DecisionIndex,
    ReviewApplier,
    corrections,
    overrides_for,
    target_of,
    with_corrections,
)
from schemas.campaign import CampaignDefinition
from schemas.events import CampaignDefined, ReviewDecided, SubmissionJudged
from storage import SqlStore
from tests.storage.conftest import RECEIVED_AT

Judged = Callable[..., SubmissionJudged]


def decision(
    i: int, action: str = "invalid", ids: tuple[str, ...] = (), link: str = "",
    start: dt.datetime | None = None, end: dt.datetime | None = None,
) -> ReviewDecided:
    return ReviewDecided(
        decision_id=f"d{i}", campaign="2023", action=action,  # type: ignore[arg-type]
        reason="a burst from one network", reviewer="organiser",
        decided_at=RECEIVED_AT + dt.timedelta(days=1, minutes=i), submission_ids=ids,
        link_code=link, window_start=start, window_end=end,
    )


def sid(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012d}"


def test_a_decision_moves_counts_once_and_a_reversal_moves_them_back(
    store: SqlStore, judged: Judged
) -> None:
    rows = [judged(i) for i in range(4)] + [judged(4, status="rejected", reasons=("too_fast",))]
    store.insert_judged(rows)
    assert store.unit_counts("2023") == {"gd-cyber": Count(valid=4, rejected=1)}
    invalid = decision(1, ids=(sid(0), sid(1), sid(4), "unknown-id"))
    assert store.apply_review(invalid) == 3  # the rejected one is covered too (stays rejected)
    assert store.unit_counts("2023") == {"gd-cyber": Count(valid=2, rejected=3)}
    assert store.apply_review(invalid) == 3  # again: nothing changes
    assert store.unit_counts("2023") == {"gd-cyber": Count(valid=2, rejected=3)}
    assert store.exact_unit_counts("2023") == store.unit_counts("2023")
    valid_again = decision(2, "valid", ids=(sid(1), sid(4)))
    store.apply_review(valid_again)
    assert store.unit_counts("2023") == {"gd-cyber": Count(valid=4, rejected=1)}
    assert store.submission_review("2023", sid(0)) == ("rejected", "d1")
    assert store.submission_review("2023", sid(4)) == ("accepted", "d2")
    assert store.submission_review("2023", sid(3)) is None
    assert store.review_standing("2023") == {"d1": (3, 1), "d2": (2, 2)}


def test_a_link_window_covers_first_verdicts_inside_it_only(
    store: SqlStore, judged: Judged
) -> None:
    rows = [
        judged(0), judged(1), judged(2), judged(3, link_code="Other"),
        judged(4, fingerprint="other", submission_id=sid(1), first_of_id=False,
               status="rejected", reasons=("duplicate_submission",)),
        judged(5, status="test", phase="public_test"),
    ]
    store.insert_judged(rows)
    before = store.unit_counts("2023")["gd-cyber"]
    # Receive times are RECEIVED_AT + i seconds: [1 s, 6 s) holds 1..5.
    d = decision(1, link="Gd7kQ2xP", start=RECEIVED_AT + dt.timedelta(seconds=1),
                 end=RECEIVED_AT + dt.timedelta(seconds=6))
    assert sorted(t.submission_id for t in store.review_targets(d)) == [sid(1), sid(2), sid(5)]
    assert store.apply_review(d) == 2  # the test-phase sheet is never counted, never covered
    after = store.unit_counts("2023")["gd-cyber"]
    assert (after.valid, after.rejected, after.test) == (
        before.valid - 2, before.rejected + 2, before.test
    )


def test_store_corrections_agree_with_the_core_specification(
    store: SqlStore, judged: Judged
) -> None:
    rows = [
        judged(i, status="rejected" if i % 3 == 0 else "accepted",
               unit="gd-cyber" if i % 2 else "gx-net")
        for i in range(12)
    ]
    store.insert_judged(rows)
    decisions = [
        decision(1, ids=tuple(sid(i) for i in range(0, 12, 2))),
        decision(2, "valid", link="Gd7kQ2xP", start=RECEIVED_AT + dt.timedelta(seconds=3),
                 end=RECEIVED_AT + dt.timedelta(seconds=9)),
        decision(3, ids=(sid(4), sid(5))),
    ]
    for d in reversed(decisions):  # applied out of order: the latest decision still stands
        store.apply_review(d)
    spec = corrections(overrides_for(decisions, [target_of(r) for r in rows]), "2023")
    assert any(c.valid for c in spec.values())
    judged_counts = tally(rows).for_campaign("2023")
    assert store.unit_counts("2023") == with_corrections(judged_counts, spec)
    assert store.exact_unit_counts("2023") == with_corrections(judged_counts, spec)


def test_verdicts_stored_after_a_decision_are_covered_by_whoever_stores_them(
    store: SqlStore, judged: Judged
) -> None:
    registry = Registry()
    d = decision(1, link="Gd7kQ2xP", start=RECEIVED_AT, end=RECEIVED_AT + dt.timedelta(hours=1))
    store.insert_judged([judged(0)])
    applier = ReviewApplier(store, registry.reviews)
    applier.after_insert([])
    assert store.unit_counts("2023")["gd-cyber"].valid == 1  # no decision known yet
    defn = {"campaign": "2023", "phases": [{"name": "c", "start": "2023-09-13",
            "end": "2023-09-22", "counts": True}],
            "questionnaire": {"version": "v", "questions": [{"id": "q", "type": "text"}]}}
    registry.apply(CampaignDefined(
        campaign="2023", defined_at=RECEIVED_AT,
        definition=CampaignDefinition.model_validate(defn),
    ))
    registry.apply(d)
    late = [judged(1), judged(2)]
    store.insert_judged(late)
    applier.after_insert(late)  # applies d to everything stored, then to the batch
    assert store.unit_counts("2023")["gd-cyber"] == Count(valid=0, rejected=3)
    assert store.apply_reviews_to(late, DecisionIndex([d])) == 0  # nothing new to write


def test_duration_median_over_accepted_first_verdicts(store: SqlStore, judged: Judged) -> None:
    assert store.duration_median("2023", "2023.1") == (0.0, 0)
    durations = [120.0, 300.0, 90.0, 600.0, 240.0]
    store.insert_judged([judged(i, duration_seconds=d) for i, d in enumerate(durations)])
    store.insert_judged([
        judged(10, status="rejected", duration_seconds=1.0),
        judged(11, duration_seconds=5.0, questionnaire_version="other"),
    ])
    assert store.duration_median("2023", "2023.1") == (240.0, 5)


def test_rules_versions_of_counted_verdicts(store: SqlStore, judged: Judged) -> None:
    store.insert_judged([
        judged(0, rules_version="2026.1"), judged(1, rules_version="2026.2"),
        judged(2, rules_version="2025.9", status="test"),
    ])
    assert store.rules_versions("2023") == ["2026.1", "2026.2"]


def test_final_ranking_is_the_same_whatever_order_things_were_stored_in(
    store_url: str, judged: Judged
) -> None:
    """Two databases fed the same verdicts and decisions in different batches and orders (as a
    live run and a replay are) freeze to the same bytes."""
    from storage import open_store

    defn = CampaignDefinition.model_validate({
        "campaign": "2023",
        "phases": [{"name": "c", "start": "2023-09-13", "end": "2023-09-22", "counts": True}],
        "work_regions": [{"id": "south", "name": "华南"}],
        "provinces": [{"id": "44", "name": "广东", "work_region": "south",
                       "internet_users": 1000, "target_rate": 0.01}],
        "units": [{"id": "gd-cyber", "name": "协会", "province": "44", "planned_samples": 5},
                  {"id": "gd-uni", "name": "大学", "province": "44", "planned_samples": 5}],
        "links": [{"code": "Gd7kQ2xP", "unit": "gd-cyber"}, {"code": "U1", "unit": "gd-uni"}],
        "questionnaire": {"version": "2023.1", "questions": [{"id": "q", "type": "text"}]},
    })
    registry = Registry()
    registry.apply(CampaignDefined(campaign="2023", defined_at=RECEIVED_AT, definition=defn))
    decisions = [decision(1, ids=(sid(0), sid(3))), decision(2, "valid", ids=(sid(3),))]
    for d in decisions:
        registry.apply(d)
    state = registry.get("2023")
    assert state is not None
    rows = [judged(i, unit="gd-uni" if i % 2 else "gd-cyber",
                   link_code="U1" if i % 2 else "Gd7kQ2xP") for i in range(8)]
    hashes = []
    for variant in range(2):
        url = store_url if variant == 0 else store_url.replace("/t_", "/t2_").replace(
            "database=t_", "database=t2_")
        with open_store(url) as s:
            s.migrate()
            if variant == 0:
                s.insert_judged(rows)
                for d in decisions:
                    s.apply_review(d)
            else:  # decisions first, verdicts later in two batches, one batch twice
                for d in reversed(decisions):
                    s.apply_review(d)
                for batch in (rows[4:], rows[:4], rows[4:]):
                    s.insert_judged(batch)
                    s.apply_reviews_to(batch, DecisionIndex(decisions))
            content = freeze.final_content(state, s.unit_counts("2023"), s.rules_versions("2023"))
            hashes.append(freeze.content_hash(content))
            if variant == 1:
                s._execute(f"DROP DATABASE IF EXISTS {s.database}")
    assert hashes[0] == hashes[1]
    assert content["leaderboards"]["unit"][0]["valid"] == 4


def test_a_serving_process_publishes_the_median_of_campaigns_with_a_relative_floor(
    store: SqlStore, judged: Judged
) -> None:
    import asyncio

    from api.review import refresh_medians
    from core.registry import RegistryEvent

    def campaign(name: str, fraction: float) -> CampaignDefinition:
        return CampaignDefinition.model_validate({
            "campaign": name,
            "phases": [{"name": "c", "start": "2023-09-13", "end": "2023-09-22", "counts": True}],
            "questionnaire": {"version": "2023.1", "relative_min_fraction": fraction,
                              "questions": [{"id": "q", "type": "text"}]},
        })

    registry = Registry()
    for name, fraction in (("2023", 0.3), ("other", 0.0)):
        registry.apply(CampaignDefined(campaign=name, defined_at=RECEIVED_AT,
                                       definition=campaign(name, fraction)))
    store.insert_judged([judged(i, duration_seconds=100.0 * (i + 1)) for i in range(3)])
    store.insert_judged([judged(9, campaign="other")])
    published: list[RegistryEvent] = []
    stop = asyncio.Event()

    async def publish(event: RegistryEvent) -> None:
        published.append(event)
        registry.apply(event)
        stop.set()

    asyncio.run(asyncio.wait_for(refresh_medians(store, registry, publish, stop, 0.01), 60))
    assert len(published) == 1  # only the campaign with a relative floor
    median = published[0]
    assert median.campaign == "2023" and median.median_seconds == 200.0  # type: ignore[union-attr]
    state = registry.get("2023")
    assert state is not None
    assert state.median_at("2023.1", median.effective_at) == (200.0, 3)  # type: ignore[union-attr]
    assert state.median_at("2023.1", median.computed_at) is None  # type: ignore[union-attr]
