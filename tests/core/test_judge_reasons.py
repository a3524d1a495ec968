"""Every reason code of CONTRACT §5, each produced by a submission crafted for it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from core.counting import tally
from core.reasons import Reason
from core.registry import Registry
from schemas.events import LinkRevoked, SubmissionJudged

UTC = dt.UTC
COLLECTION = dt.datetime(2023, 9, 14, 2, 10, tzinfo=UTC)  # 10:10 on 14 Sep in Shanghai
PUBLIC_TEST = dt.datetime(2023, 9, 11, 4, 0, tzinfo=UTC)  # 12:00 on 11 Sep in Shanghai
CONTRACT_CODES = {
    "unknown_link", "revoked_link", "unknown_questionnaire_version", "missing_required",
    "invalid_answer", "outside_window", "duplicate_submission", "duplicate_respondent",
    "too_fast", "straight_lining",
}


def _verdict(judged: SubmissionJudged) -> dict[str, Any]:
    """A verdict apart from where in the log it was read."""
    return judged.model_dump(exclude={"source_position"})


def test_reason_enum_holds_every_contract_code() -> None:
    assert {r.value for r in Reason} >= CONTRACT_CODES


def test_valid_sheet_in_the_collection_phase_is_accepted(make_submission, judge_one) -> None:
    judged = judge_one(make_submission())
    assert judged.status == "accepted"
    assert judged.reasons == ()
    assert judged.phase == "collection"
    assert judged.first_of_id


def test_unknown_link_is_rejected_and_credited_to_nobody(make_submission, judge_one) -> None:
    judged = judge_one(make_submission(link_code="NoSuchLink"))
    assert judged.status == "rejected"
    assert judged.reasons == ("unknown_link",)
    assert (judged.unit, judged.province, judged.work_region) == ("", "", "")
    assert tally([judged]).units == {}


def test_link_revoked_by_reloading_the_campaign_rejects_only_later_submissions(
    make_campaign_dict, make_campaign, make_registry, make_submission, judge_stream
) -> None:
    revoked_at = dt.datetime(2023, 9, 15, 0, 0, tzinfo=UTC)
    links = make_campaign_dict()["links"]
    links[0]["revoked"] = True  # Gd7kQ2xP
    registry = make_registry(make_campaign(), (make_campaign(links=links), revoked_at))

    before = make_submission(received_at=revoked_at - dt.timedelta(seconds=1))
    at = make_submission(received_at=revoked_at)
    after = make_submission(received_at=revoked_at + dt.timedelta(days=2))
    other_link = make_submission(received_at=revoked_at + dt.timedelta(days=2),
                                 link_code="Gd7kQ2xW")
    verdicts = [j for j, _ in judge_stream(registry, [before, at, after, other_link])]

    assert [v.status for v in verdicts] == ["accepted", "rejected", "rejected", "accepted"]
    assert verdicts[1].reasons == ("revoked_link",)
    assert verdicts[2].reasons == ("revoked_link",)
    # Still attributed: the unit sees the rejection against its own link.
    assert verdicts[2].unit == "gd-cyber"


def test_link_revoked_event_rejects_submissions_received_after_it(
    make_registry, make_submission, judge_stream
) -> None:
    registry: Registry = make_registry()
    revoked_at = dt.datetime(2023, 9, 16, tzinfo=UTC)
    registry.apply(LinkRevoked(campaign="2023", link_code="GdUni001", revoked_at=revoked_at))
    early = make_submission(link_code="GdUni001", received_at=revoked_at - dt.timedelta(hours=1))
    late = make_submission(link_code="GdUni001", received_at=revoked_at + dt.timedelta(hours=1))
    (v1, _), (v2, _) = judge_stream(registry, [early, late])
    assert (v1.status, v1.reasons) == ("accepted", ())
    assert (v2.status, v2.reasons) == ("rejected", ("revoked_link",))


def test_unknown_questionnaire_version_is_rejected(make_submission, judge_one) -> None:
    judged = judge_one(make_submission(questionnaire_version="2022.9"))
    assert judged.status == "rejected"
    assert judged.reasons == ("unknown_questionnaire_version",)


@pytest.mark.parametrize(
    ("answers", "omitted"),
    [
        ({}, ["q1"]),
        ({}, ["q2"]),
        ({"q1": None}, []),
        ({"q2": ""}, []),
        ({}, ["q1", "q2"]),
    ],
    ids=["scale omitted", "single omitted", "scale null", "single empty", "both omitted"],
)
def test_required_question_left_blank_is_missing_required(
    make_submission, judge_one, answers: dict[str, Any], omitted: list[str]
) -> None:
    judged = judge_one(make_submission(answers=answers, omit_answers=omitted))
    assert judged.status == "rejected"
    assert judged.reasons == ("missing_required",)


def test_optional_questions_may_be_left_blank(make_submission, judge_one) -> None:
    judged = judge_one(make_submission(answers={"q3": [], "q4": ""}, omit_answers=["s1"]))
    assert (judged.status, judged.reasons) == ("accepted", ())


INVALID_ANSWERS = [
    ("scale below min", {"q1": 0}),
    ("scale above max", {"q1": 6}),
    ("bool on a scale", {"q1": True}),
    ("false on a scale", {"s2": False}),
    ("fraction on a scale", {"q1": 4.5}),
    ("numeric text on a scale", {"q1": "4"}),
    ("list on a scale", {"q1": [4]}),
    ("single not an option", {"q2": "z"}),
    ("single given a list", {"q2": ["a"]}),
    ("single given a number", {"q2": 1}),
    ("multi with duplicates", {"q3": ["a", "a"]}),
    ("multi with too many", {"q3": ["a", "b", "c", "d"]}),
    ("multi with unknown option", {"q3": ["a", "e"]}),
    ("multi given a string", {"q3": "a"}),
    ("multi given numbers", {"q3": [1, 2]}),
    ("text too long", {"q4": "x" * 201}),
    ("text given a number", {"q4": 7}),
    ("text given a list", {"q4": ["free", "text"]}),
    ("answer to a question that does not exist", {"q99": "a"}),
]


@pytest.mark.parametrize("answers", [a for _, a in INVALID_ANSWERS],
                         ids=[n for n, _ in INVALID_ANSWERS])
def test_answer_that_does_not_fit_its_question_is_invalid_answer(
    make_submission, judge_one, answers: dict[str, Any]
) -> None:
    judged = judge_one(make_submission(answers=answers))
    assert judged.status == "rejected"
    assert "invalid_answer" in judged.reasons
    assert set(judged.reasons) <= {"invalid_answer", "unknown_question"}


@pytest.mark.parametrize(
    "answers",
    [{"q1": 1}, {"q1": 5}, {"q3": ["d", "a", "b"]}, {"q3": ["c"]}, {"q4": "x" * 200},
     {"q2": "c"}],
    ids=["scale min", "scale max", "multi at max_choices", "multi one", "text at max length",
         "single last option"],
)
def test_answers_on_the_boundary_are_accepted(
    make_submission, judge_one, answers: dict[str, Any]
) -> None:
    judged = judge_one(make_submission(answers=answers))
    assert (judged.status, judged.reasons) == ("accepted", ())


@pytest.mark.parametrize(
    "received_at",
    [
        dt.datetime(2023, 9, 7, 15, 59, 59, tzinfo=UTC),  # 23:59:59 on 7 Sep, before any phase
        dt.datetime(2023, 9, 10, 4, 0, tzinfo=UTC),  # 10 Sep: the gap between the two tests
        dt.datetime(2023, 9, 22, 16, 0, tzinfo=UTC),  # 00:00 on 23 Sep: the window has closed
        dt.datetime(2024, 9, 14, 4, 0, tzinfo=UTC),  # a year later
    ],
    ids=["before", "between tests", "after", "next year"],
)
def test_submission_received_outside_every_phase_is_outside_window(
    make_submission, judge_one, received_at: dt.datetime
) -> None:
    judged = judge_one(make_submission(received_at=received_at))
    assert judged.status == "rejected"
    assert judged.reasons == ("outside_window",)
    assert judged.phase == ""


def test_identical_resend_is_absorbed_and_not_counted_twice(
    make_submission, resend_of, make_registry, judge_stream
) -> None:
    original = make_submission()
    results = judge_stream(make_registry(), [original, resend_of(original)])
    (first, first_resend), (again, again_resend) = results
    assert (first_resend, again_resend) == (False, True)
    assert _verdict(again) == _verdict(first)
    counted = tally(j for j, resend in results if not resend)
    assert counted.for_campaign("2023")["gd-cyber"].valid == 1


def test_same_id_with_different_content_is_duplicate_submission_and_first_stays_accepted(
    make_submission, resend_of, make_registry, judge_stream
) -> None:
    first = make_submission()
    conflicting = make_submission(
        submission_id=first.body["submission_id"], device_id=first.body["device_id"],
        answers={"q1": 2},
    )
    results = judge_stream(make_registry(), [first, conflicting, resend_of(first)])
    (v1, r1), (v2, r2), (v3, r3) = results

    assert (v1.status, v1.reasons, v1.first_of_id, r1) == ("accepted", (), True, False)
    assert (v2.status, v2.reasons, v2.first_of_id, r2) == (
        "rejected", ("duplicate_submission",), False, False,
    )
    # The original is still the accepted one when it comes again.
    assert (_verdict(v3), r3) == (_verdict(v1), True)
    counts = tally(j for j, resend in results if not resend).for_campaign("2023")["gd-cyber"]
    assert (counts.valid, counts.rejected) == (1, 1)


def test_second_accepted_looking_sheet_from_a_device_is_duplicate_respondent(
    make_submission, make_registry, judge_stream
) -> None:
    first = make_submission(device_id="phone-1")
    second = make_submission(device_id="phone-1", link_code="Gx1aB2cD",
                             received_at=first.received_at + dt.timedelta(hours=3))
    (v1, _), (v2, _) = judge_stream(make_registry(), [first, second])
    assert (v1.status, v1.reasons) == ("accepted", ())
    assert (v2.status, v2.reasons) == ("rejected", ("duplicate_respondent",))


def test_a_device_may_answer_once_in_each_campaign(
    make_campaign, make_registry, make_submission, judge_stream
) -> None:
    registry = make_registry(make_campaign(), make_campaign(campaign="2023-extra"))
    here = make_submission(device_id="phone-1")
    there = make_submission(device_id="phone-1", campaign="2023-extra")
    verdicts = [j for j, _ in judge_stream(registry, [here, there])]
    assert [(v.campaign, v.status) for v in verdicts] == [
        ("2023", "accepted"), ("2023-extra", "accepted"),
    ]


def test_test_phase_answer_from_a_device_does_not_block_a_later_real_one(
    make_submission, make_registry, judge_stream
) -> None:
    trial = make_submission(device_id="phone-1", received_at=PUBLIC_TEST)
    real = make_submission(device_id="phone-1", received_at=COLLECTION)
    (v1, _), (v2, _) = judge_stream(make_registry(), [trial, real])
    assert (v1.status, v1.reasons) == ("test", ())
    assert (v2.status, v2.reasons) == ("accepted", ())


def test_rejected_sheet_from_a_device_does_not_block_its_later_valid_one(
    make_submission, make_registry, judge_stream
) -> None:
    hasty = make_submission(device_id="phone-1", duration=5)
    careful = make_submission(device_id="phone-1",
                              received_at=hasty.received_at + dt.timedelta(minutes=20))
    (v1, _), (v2, _) = judge_stream(make_registry(), [hasty, careful])
    assert (v1.status, v1.reasons) == ("rejected", ("too_fast",))
    assert (v2.status, v2.reasons) == ("accepted", ())


def test_later_flawed_sheet_from_a_counted_device_carries_both_codes(
    make_submission, make_registry, judge_stream
) -> None:
    first = make_submission(device_id="phone-1")
    flawed = make_submission(device_id="phone-1", duration=5,
                             received_at=first.received_at + dt.timedelta(minutes=20))
    (_, _), (v2, _) = judge_stream(make_registry(), [first, flawed])
    assert v2.reasons == ("duplicate_respondent", "too_fast")


def test_sheets_without_a_device_id_never_compete(
    make_submission, make_registry, judge_stream
) -> None:
    sheets = [make_submission(omit=["device_id"]) for _ in range(3)]
    verdicts = [j for j, _ in judge_stream(make_registry(), sheets)]
    assert [v.status for v in verdicts] == ["accepted"] * 3
    assert all(v.device_hash == "" for v in verdicts)


@pytest.mark.parametrize(("seconds", "too_fast"), [(0, True), (59.9, True), (60, False),
                                                    (3600, False)])
def test_completion_under_min_seconds_is_too_fast(
    make_submission, judge_one, seconds: float, too_fast: bool
) -> None:
    judged = judge_one(make_submission(duration=seconds))
    assert judged.duration_seconds == pytest.approx(seconds)
    assert judged.reasons == (("too_fast",) if too_fast else ())


def test_submitted_before_started_is_invalid_timestamps(make_submission, judge_one) -> None:
    judged = judge_one(make_submission(duration=-30))
    assert judged.status == "rejected"
    assert judged.reasons == ("invalid_timestamps",)


def test_same_point_on_every_scale_item_is_straight_lining(make_submission, judge_one) -> None:
    same = {"q1": 3, "s1": 3, "s2": 3, "s3": 3, "s4": 3}
    judged = judge_one(make_submission(answers=same))
    assert judged.status == "rejected"
    assert judged.reasons == ("straight_lining",)


def test_too_few_identical_scale_answers_are_not_straight_lining(
    make_submission, judge_one
) -> None:
    four = {"q1": 3, "s1": 3, "s2": 3, "s3": 3}
    judged = judge_one(make_submission(answers=four, omit_answers=["s4"]))
    assert (judged.status, judged.reasons) == ("accepted", ())


def test_one_sheet_can_carry_several_codes(make_submission, judge_one) -> None:
    judged = judge_one(make_submission(
        link_code="NoSuchLink",
        duration=10,
        answers={"q2": "z", "s1": 2, "s2": 2, "s3": 2, "s4": 2, "q1": 2},
        received_at=dt.datetime(2023, 9, 30, tzinfo=UTC),
    ))
    assert judged.status == "rejected"
    assert judged.reasons == (
        "invalid_answer", "outside_window", "straight_lining", "too_fast", "unknown_link",
    )


def test_missing_and_invalid_answers_are_both_reported(make_submission, judge_one) -> None:
    judged = judge_one(make_submission(answers={"q3": ["a", "a"]}, omit_answers=["q1"]))
    assert judged.reasons == ("invalid_answer", "missing_required")


def test_every_reason_produced_is_a_known_code(make_submission, judge_one) -> None:
    judged = judge_one(make_submission(
        questionnaire_version="0", link_code="x", received_at=dt.datetime(2020, 1, 1, tzinfo=UTC)
    ))
    assert judged.reasons == ("outside_window", "unknown_link",
                              "unknown_questionnaire_version")
    assert all(isinstance(r, str) and r in {x.value for x in Reason} for r in judged.reasons)


def test_envelope_the_collector_would_refuse_is_kept_and_rejected(
    make_submission, judge_one
) -> None:
    # Only an older collector could have let this through; it is judged, never dropped.
    judged = judge_one(make_submission(started_at="not a time"))
    assert judged.status == "rejected"
    assert judged.reasons == ("invalid_answer",)
    assert judged.submission_id.startswith("sub-")


def test_unknown_campaign_is_rejected_with_reasons(make_submission, judge_one) -> None:
    judged = judge_one(make_submission(campaign="1999"))
    assert judged.status == "rejected"
    assert {"outside_window", "unknown_link"} <= set(judged.reasons)


@pytest.mark.parametrize(
    "first_received_at",
    [PUBLIC_TEST, dt.datetime(2023, 9, 7, tzinfo=UTC)],
    ids=["test phase", "before the window"],
)
def test_resend_received_in_a_later_phase_does_not_claim_the_device(
    make_submission, resend_of, make_registry, judge_stream, first_received_at: dt.datetime
) -> None:
    # The retry of an uncounted sheet arrives once collection is open: it is absorbed as a
    # resend, so it must not make the device's next, counted sheet a duplicate respondent.
    first = make_submission(device_id="phone-1", received_at=first_received_at)
    retry = resend_of(first, received_at=COLLECTION)
    real = make_submission(device_id="phone-1", received_at=COLLECTION + dt.timedelta(hours=1))
    results = judge_stream(make_registry(), [first, retry, real])
    assert [resend for _, resend in results] == [False, True, False]
    assert results[0][0].status in {"test", "rejected"}
    assert (results[2][0].status, results[2][0].reasons) == ("accepted", ())
