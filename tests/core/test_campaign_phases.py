"""The phase comes from the collector's receive time in the campaign's timezone, dates inclusive."""

from __future__ import annotations

import datetime as dt

import pytest

from core.counting import tally

UTC = dt.UTC


@pytest.mark.parametrize(
    ("received_at", "phase", "status"),
    [
        # 2023-09-12T16:30Z is 00:30 on 13 Sep in Shanghai: collection has begun.
        (dt.datetime(2023, 9, 12, 16, 30, tzinfo=UTC), "collection", "accepted"),
        (dt.datetime(2023, 9, 12, 16, 0, tzinfo=UTC), "collection", "accepted"),
        (dt.datetime(2023, 9, 12, 15, 59, 59, tzinfo=UTC), "public_test", "test"),
        # Last second of 22 Sep in Shanghai is still collection; the next one is not.
        (dt.datetime(2023, 9, 22, 15, 59, 59, tzinfo=UTC), "collection", "accepted"),
        (dt.datetime(2023, 9, 22, 16, 0, tzinfo=UTC), "", "rejected"),
        # First and last instants of the two test phases.
        (dt.datetime(2023, 9, 7, 16, 0, tzinfo=UTC), "internal_test", "test"),
        (dt.datetime(2023, 9, 9, 15, 59, 59, tzinfo=UTC), "internal_test", "test"),
        (dt.datetime(2023, 9, 9, 16, 0, tzinfo=UTC), "", "rejected"),
        (dt.datetime(2023, 9, 10, 16, 0, tzinfo=UTC), "public_test", "test"),
    ],
    ids=lambda v: v.isoformat() if isinstance(v, dt.datetime) else str(v),
)
def test_phase_is_decided_by_receive_time_in_the_campaign_timezone(
    make_submission, judge_one, received_at: dt.datetime, phase: str, status: str
) -> None:
    judged = judge_one(make_submission(received_at=received_at))
    assert (judged.phase, judged.status) == (phase, status)
    assert judged.reasons == (() if phase else ("outside_window",))


def test_receive_time_in_another_offset_is_read_in_the_campaign_timezone(
    make_submission, judge_one
) -> None:
    # 23:30 on 22 Sep in New York is 11:30 on 23 Sep in Shanghai: too late.
    new_york = dt.timezone(dt.timedelta(hours=-4))
    judged = judge_one(make_submission(received_at=dt.datetime(2023, 9, 22, 23, 30,
                                                               tzinfo=new_york)))
    assert judged.reasons == ("outside_window",)


def test_campaign_in_another_timezone_draws_its_own_midnight(
    make_campaign, make_registry, make_submission, judge_one
) -> None:
    registry = make_registry(make_campaign(timezone="UTC"))
    # 16:30 UTC on 12 Sep: already collection in Shanghai, still public test in UTC.
    judged = judge_one(make_submission(received_at=dt.datetime(2023, 9, 12, 16, 30,
                                                               tzinfo=UTC)), registry)
    assert (judged.phase, judged.status) == ("public_test", "test")


def test_client_clock_does_not_decide_the_phase(make_submission, judge_one) -> None:
    received = dt.datetime(2023, 9, 23, 2, 0, tzinfo=UTC)  # 10:00 on 23 Sep in Shanghai
    judged = judge_one(make_submission(
        received_at=received,
        started_at="2023-09-22T10:00:00+08:00",
        submitted_at="2023-09-22T10:10:00+08:00",
    ))
    assert judged.reasons == ("outside_window",)

    early = judge_one(make_submission(
        received_at=dt.datetime(2023, 9, 14, 2, 0, tzinfo=UTC),
        started_at="2023-09-01T10:00:00+08:00",
        submitted_at="2023-09-01T10:10:00+08:00",
    ))
    assert (early.phase, early.status) == ("collection", "accepted")


def test_valid_sheet_in_a_test_phase_has_status_test(make_submission, judge_one) -> None:
    judged = judge_one(make_submission(received_at=dt.datetime(2023, 9, 11, 4, tzinfo=UTC)))
    assert (judged.status, judged.reasons, judged.phase) == ("test", (), "public_test")


def test_flawed_sheet_in_a_test_phase_is_judged_but_stays_test(
    make_submission, judge_one
) -> None:
    judged = judge_one(make_submission(
        received_at=dt.datetime(2023, 9, 8, 4, tzinfo=UTC), answers={"q1": 9}, duration=3,
    ))
    assert judged.status == "test"
    assert judged.reasons == ("invalid_answer", "too_fast")


def test_test_phase_answers_never_count_as_valid(
    make_submission, make_registry, judge_stream
) -> None:
    sheets = [
        make_submission(received_at=dt.datetime(2023, 9, 8, 4, tzinfo=UTC)),
        make_submission(received_at=dt.datetime(2023, 9, 12, 4, tzinfo=UTC)),
        make_submission(received_at=dt.datetime(2023, 9, 12, 4, tzinfo=UTC), duration=1),
        make_submission(received_at=dt.datetime(2023, 9, 13, 4, tzinfo=UTC)),
    ]
    counted = tally(j for j, _ in judge_stream(make_registry(), sheets))
    unit = counted.for_campaign("2023")["gd-cyber"]
    assert (unit.valid, unit.rejected, unit.test) == (1, 0, 3)
