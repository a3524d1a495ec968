"""Issue #10 in the core: speed and attention rules, review decisions, pacing, the final ranking."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import freeze
from core.counting import Count
from core.judge import JudgeState, judge
from core.pacing import METHOD, pacing, window
from core.reasons import RULES_VERSION, Reason
from core.registry import Registry
from core.review import (
    ReviewTarget,
    corrections,
    covers,
    decisions_for,
    overrides_for,
    standing,
    with_corrections,
)
from schemas.campaign import CampaignFileError, parse_campaign_text
from schemas.events import (
    CampaignDefined,
    DurationMedianSet,
    ReviewDecided,
    UnknownEventError,
    decode_event,
    encode_event,
)
from tests.core.conftest import (
    CAMPAIGN,
    CAMPAIGN_DICT,
    DEFINED_AT,
    HASH_KEY,
    RECEIVED_AT,
    VERSION,
    judge_one,
    make_campaign,
    make_registry,
    make_submission,
)

UTC = dt.UTC


def questionnaire(**fields: Any) -> dict[str, Any]:
    return {**CAMPAIGN_DICT["questionnaire"], **fields}


def registry_with(**fields: Any) -> Registry:
    return make_registry(make_campaign(questionnaire=questionnaire(**fields)))


def median_event(
    median: float, samples: int, effective_at: dt.datetime, version: str = VERSION
) -> DurationMedianSet:
    return DurationMedianSet(
        campaign=CAMPAIGN, questionnaire_version=version, median_seconds=median,
        samples=samples, computed_at=effective_at - dt.timedelta(seconds=10),
        effective_at=effective_at,
    )


# -- speed floors ---------------------------------------------------------------------------


def test_verdicts_carry_the_new_rules_version() -> None:
    assert RULES_VERSION == "2026.2"
    assert judge_one(make_submission()).rules_version == "2026.2"


def test_per_item_floor_counts_answered_questions_only() -> None:
    registry = registry_with(min_seconds=0, min_seconds_per_item=10)
    # 8 answered questions: the floor is 80 s.
    fast = judge_one(make_submission(duration=79), registry)
    slow = judge_one(make_submission(duration=81), registry)
    assert fast.status == "rejected" and fast.reasons == (Reason.TOO_FAST_PER_ITEM,)
    assert slow.status == "accepted"
    # Leave three optional questions blank: 5 answered, a 50 s floor.
    fewer = judge_one(make_submission(duration=60, omit_answers=["q3", "q4", "s4"]), registry)
    assert fewer.status == "accepted"


def test_each_speed_floor_has_its_own_reason() -> None:
    registry = registry_with(min_seconds=60, min_seconds_per_item=10)
    both = judge_one(make_submission(duration=30), registry)
    assert set(both.reasons) == {Reason.TOO_FAST, Reason.TOO_FAST_PER_ITEM}


def test_relative_floor_applies_only_once_a_median_with_enough_samples_is_in_force() -> None:
    registry = registry_with(min_seconds=0, relative_min_fraction=0.5, relative_min_samples=100)
    sheet = make_submission(duration=200)  # half of a 500 s median is 250 s
    assert judge_one(sheet, registry).status == "accepted"  # no median published yet
    early = RECEIVED_AT - dt.timedelta(hours=1)
    registry.apply(median_event(500, 99, early))
    assert judge_one(make_submission(duration=200), registry).status == "accepted"  # too few
    registry.apply(median_event(500, 100, early + dt.timedelta(minutes=1)))
    judged = judge_one(make_submission(duration=200), registry)
    assert judged.reasons == (Reason.TOO_FAST_RELATIVE,)
    assert judge_one(make_submission(duration=260), registry).status == "accepted"
    # A median effective after the receive time does not apply to it.
    registry.apply(median_event(100, 1000, RECEIVED_AT + dt.timedelta(seconds=1)))
    assert judge_one(make_submission(duration=200), registry).reasons == (
        Reason.TOO_FAST_RELATIVE,
    )
    later = make_submission(duration=200, received_at=RECEIVED_AT + dt.timedelta(seconds=2))
    assert judge_one(later, registry).status == "accepted"  # 200 s is over half of 100 s


@settings(max_examples=40, deadline=None)
@given(
    durations=st.lists(st.integers(min_value=1, max_value=900), min_size=1, max_size=25),
    offsets=st.lists(st.integers(min_value=0, max_value=7200), min_size=25, max_size=25),
    medians=st.lists(
        st.tuples(st.integers(0, 7200), st.integers(60, 900), st.integers(1, 300)),
        max_size=4,
    ),
)
def test_relative_floor_verdicts_do_not_depend_on_when_the_median_was_read(
    durations: list[int], offsets: list[int], medians: list[tuple[int, int, int]]
) -> None:
    """A replay folds the whole registry before judging; the live run folds each median as it
    is published, before any sheet received after its effective time. Same verdicts."""
    start = RECEIVED_AT - dt.timedelta(hours=2)
    events = [
        make_submission(duration=d, received_at=start + dt.timedelta(seconds=o))
        for d, o in zip(durations, offsets, strict=False)
    ]
    events.sort(key=lambda e: e.received_at)
    published = sorted(
        (median_event(float(m), n, start + dt.timedelta(seconds=at)) for at, m, n in medians),
        key=lambda e: e.effective_at,
    )
    fields = {"min_seconds": 0, "relative_min_fraction": 0.4, "relative_min_samples": 50}

    replay = registry_with(**fields)
    for m in published:
        replay.apply(m)
    replayed = [judge(e, f"0:{i}", replay, JudgeState.empty(), HASH_KEY)[0]
                for i, e in enumerate(events)]

    live = registry_with(**fields)
    pending = list(published)
    verdicts = []
    for i, e in enumerate(events):
        while pending and pending[0].effective_at <= e.received_at:
            live.apply(pending.pop(0))
        verdicts.append(judge(e, f"0:{i}", live, JudgeState.empty(), HASH_KEY)[0])
    assert verdicts == replayed


# -- attention checks -----------------------------------------------------------------------

ATTENTION = {
    "id": "ac1", "type": "attention", "options": ["很不满意", "比较满意", "非常满意"],
    "expected": "比较满意", "label": "本题请选择'比较满意'",
}


def attention_registry() -> Registry:
    questions = [*CAMPAIGN_DICT["questionnaire"]["questions"], ATTENTION]
    return registry_with(questions=questions)


@pytest.mark.parametrize(
    ("answer", "reasons"),
    [
        ("比较满意", ()),
        ("非常满意", (Reason.ATTENTION_CHECK_FAILED,)),
        (None, (Reason.ATTENTION_CHECK_FAILED, Reason.MISSING_REQUIRED)),
        ("不存在", (Reason.ATTENTION_CHECK_FAILED, Reason.INVALID_ANSWER)),
    ],
)
def test_attention_check_rejects_anything_but_the_instructed_answer(
    answer: str | None, reasons: tuple[Reason, ...]
) -> None:
    judged = judge_one(make_submission(answers={"ac1": answer}), attention_registry())
    assert judged.reasons == tuple(sorted(reasons))
    assert judged.status == ("accepted" if not reasons else "rejected")


def test_attention_check_whose_expected_answer_is_no_option_names_file_line_and_field() -> None:
    text = (
        "campaign: x\nphases: [{name: c, start: 2023-09-13, end: 2023-09-22, counts: true}]\n"
        "questionnaire:\n  version: v1\n  questions:\n"
        "    - {id: q1, type: scale, min: 1, max: 5}\n"
        "    - {id: ac, type: attention, options: [a, b], expected: c}\n"
    )
    with pytest.raises(CampaignFileError) as err:
        parse_campaign_text(text, "campaign.yaml")
    message = str(err.value)
    assert message.startswith("campaign.yaml:7: at questionnaire.questions.1.attention.expected")
    assert "field 'expected'" in message and "'c' is not one of its options" in message


def test_speed_settings_are_checked_where_they_are_written() -> None:
    text = (
        "campaign: x\nphases: [{name: c, start: 2023-09-13, end: 2023-09-22, counts: true}]\n"
        "questionnaire:\n  version: v1\n  relative_min_fraction: 1.5\n  questions:\n"
        "    - {id: q1, type: scale, min: 1, max: 5}\n"
    )
    with pytest.raises(CampaignFileError) as err:
        parse_campaign_text(text, "c.yaml")
    assert str(err.value).startswith(
        "c.yaml:5: at questionnaire.relative_min_fraction: field 'relative_min_fraction'"
    )


# -- events -----------------------------------------------------------------------------------


def decision(
    i: int, action: str = "invalid", ids: tuple[str, ...] = (), link: str = "",
    start: dt.datetime | None = None, end: dt.datetime | None = None,
    at: dt.datetime | None = None,
) -> ReviewDecided:
    return ReviewDecided(
        decision_id=f"d{i:03d}", campaign=CAMPAIGN, action=action,  # type: ignore[arg-type]
        reason="padding from one network", reviewer="organiser@example",
        decided_at=at or RECEIVED_AT + dt.timedelta(hours=i), submission_ids=ids,
        link_code=link, window_start=start, window_end=end,
    )


def test_review_and_median_events_round_trip_through_the_strict_decoder() -> None:
    for event in (
        decision(1, ids=("a", "b")),
        decision(2, link="Gd7kQ2xP", start=RECEIVED_AT, end=RECEIVED_AT + dt.timedelta(1)),
        median_event(300.5, 120, RECEIVED_AT),
    ):
        assert decode_event(encode_event(event)) == event


@pytest.mark.parametrize(
    "fields",
    [
        {},  # no target
        {"submission_ids": ["a"], "link_code": "Gd7kQ2xP"},  # two targets
        {"link_code": "Gd7kQ2xP", "window_start": "2023-09-14T00:00:00Z"},  # no end
        {"link_code": "L", "window_start": "2023-09-14T01:00:00Z",
         "window_end": "2023-09-14T00:00:00Z"},  # backwards
    ],
)
def test_a_decision_without_exactly_one_target_is_refused(fields: dict[str, Any]) -> None:
    raw = {
        "v": 1, "kind": "review.decided", "decision_id": "d", "campaign": CAMPAIGN,
        "action": "invalid", "reason": "r", "reviewer": "w",
        "decided_at": "2023-09-14T00:00:00Z", **fields,
    }
    with pytest.raises(UnknownEventError):
        decode_event(json.dumps(raw))


# -- review decisions -------------------------------------------------------------------------


def target(i: int, status: str = "accepted", unit: str = "gd-cyber", **kw: Any) -> ReviewTarget:
    values: dict[str, Any] = {
        "campaign": CAMPAIGN, "submission_id": f"s{i}", "status": status, "unit": unit,
        "province": "44", "work_region": "south", "link_code": "Gd7kQ2xP",
        "received_at": RECEIVED_AT + dt.timedelta(minutes=i), "first_of_id": True,
    }
    values.update(kw)
    return ReviewTarget(**values)


def effective_counts(
    targets: list[ReviewTarget], decisions: list[ReviewDecided]
) -> dict[str, Count]:
    """The specification, spelled out: each sheet counts under its latest covering decision."""
    out: dict[str, Count] = {}
    for t in targets:
        status = t.status
        covering = decisions_for(decisions, t)
        if covering:
            status = "rejected" if covering[-1].action == "invalid" else "accepted"
        c = out.setdefault(t.unit, Count())
        if status == "accepted":
            c.valid += 1
        elif status == "rejected":
            c.rejected += 1
        else:
            c.test += 1
    return out


def judged_counts(targets: list[ReviewTarget]) -> dict[str, Count]:
    return effective_counts(targets, [])


def test_invalid_then_valid_again_moves_a_sheet_and_back() -> None:
    sheets = [target(1), target(2), target(3, status="rejected")]
    d1 = decision(1, ids=("s1", "s3"))
    changes = corrections(overrides_for([d1], sheets), CAMPAIGN)
    after = with_corrections(judged_counts(sheets), changes)
    assert after["gd-cyber"] == Count(valid=1, rejected=2)
    d2 = decision(2, action="valid", ids=("s1", "s3"))
    both = overrides_for([d1, d2], sheets)
    after = with_corrections(judged_counts(sheets), corrections(both, CAMPAIGN))
    assert after["gd-cyber"] == Count(valid=3, rejected=0)  # s3 was judged rejected: +1


def test_a_window_covers_a_links_first_verdicts_received_inside_it_in_whole_seconds() -> None:
    start = RECEIVED_AT + dt.timedelta(minutes=2, microseconds=700_000)
    d = decision(1, link="Gd7kQ2xP", start=start, end=RECEIVED_AT + dt.timedelta(minutes=4))
    inside = target(2, received_at=RECEIVED_AT + dt.timedelta(minutes=2, microseconds=100_000))
    assert covers(d, inside)  # the same second as the start
    assert not covers(d, target(4))  # the end is exclusive
    assert not covers(d, target(3, link_code="Other"))
    assert not covers(d, target(3, first_of_id=False))  # a conflicting resend is never counted
    assert not covers(d, target(3, status="test"))  # test sheets never count
    assert not covers(d, target(3, unit=""))


decisions_st = st.lists(
    st.tuples(
        st.sampled_from(["invalid", "valid"]),
        st.one_of(
            st.lists(st.integers(0, 11), min_size=1, max_size=5, unique=True).map(
                lambda ids: ("ids", tuple(f"s{i}" for i in ids))
            ),
            st.tuples(st.integers(0, 11), st.integers(1, 8)).map(lambda w: ("window", w)),
        ),
    ),
    max_size=8,
)


def build_decisions(spec: list[tuple[str, Any]]) -> list[ReviewDecided]:
    out = []
    for i, (action, (kind, value)) in enumerate(spec):
        if kind == "ids":
            out.append(decision(i, action, ids=value))
        else:
            first, width = value
            start = RECEIVED_AT + dt.timedelta(minutes=first)
            out.append(decision(i, action, link="Gd7kQ2xP", start=start,
                                end=start + dt.timedelta(minutes=width)))
    return out


SHEETS = [
    target(i, status=("accepted", "rejected", "test")[i % 3], unit=("gd-cyber", "gx-net")[i % 2])
    for i in range(12)
]


@settings(max_examples=150, deadline=None)
@given(spec=decisions_st, data=st.data())
def test_counts_follow_the_latest_decision_whatever_order_and_repetition_rows_arrive_in(
    spec: list[tuple[str, Any]], data: st.DataObject
) -> None:
    decisions = build_decisions(spec)
    expected = effective_counts(SHEETS, decisions)
    rows = overrides_for(decisions, SHEETS)
    # Rows written again (a restart, a second worker) and in any order (late verdicts first).
    shuffled = data.draw(st.permutations(rows + rows[: len(rows) // 2]))
    got = with_corrections(judged_counts(SHEETS), corrections(shuffled, CAMPAIGN))
    assert {u: c for u, c in got.items()} == expected
    # Valid and rejected move together; test counts never move.
    before = judged_counts(SHEETS)
    for unit, c in got.items():
        assert c.valid + c.rejected == before[unit].valid + before[unit].rejected
        assert c.test == before[unit].test


def test_the_same_decision_twice_changes_nothing() -> None:
    d = decision(1, ids=("s0", "s1"))
    once = corrections(overrides_for([d], SHEETS), CAMPAIGN)
    twice = corrections(overrides_for([d, d], SHEETS) + overrides_for([d], SHEETS), CAMPAIGN)
    assert once == twice
    registry = make_registry()
    registry.apply(d)
    registry.apply(d)
    assert registry.get(CAMPAIGN) is not None
    assert [r.decision_id for r in registry.reviews()] == ["d001"]


def test_latest_decision_is_by_decision_time_not_arrival() -> None:
    early = decision(1, "valid", ids=("s0",))
    late = decision(2, "invalid", ids=("s0",))
    rows = overrides_for([late, early], SHEETS)
    assert standing(rows)[(CAMPAIGN, "s0")].decision_id == "d002"


def test_decisions_survive_a_redefinition_of_the_campaign() -> None:
    registry = make_registry()
    registry.apply(decision(1, ids=("s0",)))
    registry.apply(median_event(300, 200, RECEIVED_AT))
    defn = make_campaign()
    registry.apply(CampaignDefined(campaign=CAMPAIGN, defined_at=DEFINED_AT, definition=defn))
    state = registry.get(CAMPAIGN)
    assert state is not None and len(state.reviews) == 1
    assert state.median_at(VERSION, RECEIVED_AT) == (300, 200)


# -- pacing -----------------------------------------------------------------------------------

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def test_pacing_is_linear_over_counting_days() -> None:
    state = make_registry().get(CAMPAIGN)
    assert state is not None
    # Collection runs 13-22 Sep (10 days); the 16th at noon is 3.5 days in.
    now = dt.datetime(2023, 9, 16, 12, tzinfo=SHANGHAI)
    counts = {"gd-cyber": Count(valid=200), "gd-uni": Count(valid=100), "gx-net": Count(valid=50)}
    win, rows = pacing(state, counts, "province", now)
    assert (win.counting_days, win.elapsed_days) == (10, 3.5)
    assert win.first_day == dt.date(2023, 9, 13) and win.last_day == dt.date(2023, 9, 22)
    by_id = {r.id: r for r in rows}
    gd = by_id["44"]  # target 1000, 350 due, 300 valid
    assert (gd.expected, gd.gap, gd.status, gd.needed_per_day) == (350, -50, "behind", 108)
    gx = by_id["45"]  # target 400, 140 due, 50 valid
    assert (gx.expected, gx.gap, gx.status) == (140, -90, "behind")
    assert [r.id for r in rows][:2] == ["11", "45"]  # furthest behind first (-105, -90)
    units = {r.id: r for r in pacing(state, counts, "unit", now)[1]}
    assert (units["gd-cyber"].expected, units["gd-cyber"].status) == (175, "ahead")
    assert (units["gd-uni"].expected, units["gd-uni"].status) == (105, "behind")
    assert "linear over counting days" in METHOD


def test_nothing_is_due_before_the_window_and_everything_after() -> None:
    state = make_registry().get(CAMPAIGN)
    assert state is not None
    # The test phases do not count: nothing is due during them.
    assert window(state, dt.datetime(2023, 9, 12, 23, tzinfo=SHANGHAI)).share == 0
    after = window(state, dt.datetime(2023, 9, 30, tzinfo=SHANGHAI))
    assert after.share == 1 and after.remaining_days == 0
    _, rows = pacing(state, {}, "unit", dt.datetime(2023, 9, 30, tzinfo=SHANGHAI))
    assert all(r.expected == r.target and r.needed_per_day is None for r in rows)


def test_gaps_between_counting_phases_accrue_nothing() -> None:
    phases = [
        {"name": "a", "start": "2023-09-13", "end": "2023-09-14", "counts": True},
        {"name": "pause", "start": "2023-09-15", "end": "2023-09-17", "counts": False},
        {"name": "b", "start": "2023-09-18", "end": "2023-09-19", "counts": True},
    ]
    state = make_registry(make_campaign(phases=phases)).get(CAMPAIGN)
    assert state is not None
    assert window(state, dt.datetime(2023, 9, 16, 12, tzinfo=SHANGHAI)).share == 0.5


# -- the final ranking ------------------------------------------------------------------------


def test_final_content_hash_is_canonical_and_independent_of_input_order() -> None:
    registry = make_registry()
    registry.apply(decision(2, ids=("x",)))
    registry.apply(decision(1, ids=("y",)))
    state = registry.get(CAMPAIGN)
    assert state is not None
    counts = {"gd-cyber": Count(3, 1, 0), "gx-net": Count(3, 0, 2), "bj-net": Count(0, 5, 0)}
    a = freeze.final_content(state, counts, ["2026.2", "2026.1", "2026.2"])
    b = freeze.final_content(state, dict(reversed(list(counts.items()))), ["2026.1", "2026.2"])
    assert freeze.content_hash(a) == freeze.content_hash(b)
    assert a["rules_versions"] == ["2026.1", "2026.2"] and a["provisional"] is False
    assert a["review_decisions"] == ["d001", "d002"]  # by decision time
    assert a["totals"] == {"valid": 6, "rejected": 6, "test": 2}
    ranks = [(r["id"], r["rank"]) for r in a["leaderboards"]["unit"]][:3]
    assert ranks == [("gd-cyber", 1), ("gx-net", 1), ("bj-net", 3)]
    snap = freeze.snapshot(a, dt.datetime.now(UTC))
    assert freeze.verify(snap)
    assert snap["sha256"] == freeze.content_hash(b)
    changed = freeze.final_content(state, {**counts, "gx-net": Count(4, 0, 2)}, ["2026.2"])
    assert freeze.content_hash(changed) != snap["sha256"]
    tampered = {**snap, "content": {**snap["content"], "totals": {"valid": 7}}}
    assert not freeze.verify(tampered)


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert freeze.canonical({"b": 1, "a": "广东"}) == '{"a":"广东","b":1}'.encode()


def test_decision_order_key_sorts_by_time_then_id() -> None:
    from core.review import order_key

    same_time = [order_key(decision(i, ids=("s",), at=RECEIVED_AT)) for i in (2, 1)]
    assert sorted(same_time) == [same_time[1], same_time[0]]
    # d000 at +0 h, d001 at +1 h, ...: decision time first, even across digit counts.
    keys = [order_key(decision(i, ids=("s",))) for i in (0, 1, 12)]
    assert all(a < b for a, b in itertools.pairwise(keys))
