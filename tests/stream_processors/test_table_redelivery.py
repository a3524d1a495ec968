"""A worker killed mid-batch keeps table writes of records it is handed again (RocksDB writes at
once; the batch's changelog records and its commit may not have happened). Judging those records
again against such a table must give the verdicts the first pass gave, as faust_app says.

The two steps are replayed here as stream_processors.faust_app runs them (one partition, records
in offset order, each write applied at once): a first pass from an empty table; then a crash
with records [k, n) not committed and the writes of records [k, j) kept (j >= k: any prefix of
the uncommitted writes may have reached the database), and the records [k, n) judged again."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Literal

from hypothesis import given, settings
from hypothesis import strategies as st

from core.judge import assess, device_key, settle_respondent
from core.reasons import Reason
from core.registry import Registry
from schemas.events import SubmissionJudged, SubmissionReceived
from stream_processors.faust_records import received_key

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
REGISTRY = Registry()
PROPS = settings(max_examples=300, deadline=None)


def _assess_pass(
    records: Sequence[SubmissionReceived], table: dict[str, list[str]], start: int = 0
) -> list[SubmissionJudged]:
    """faust_app's assess_batch over records[start:]: read, judge, write when changed."""
    out = []
    for i in range(start, len(records)):
        received = records[i]
        key = received_key(received)
        prior = tuple(table.get(key) or ())
        a = assess(received, f"0:{i}", REGISTRY, prior, "k")
        if a.fingerprints != prior:
            table[key] = list(a.fingerprints)
        out.append(a.judged)
    return out


def _settle_pass(
    verdicts: Sequence[SubmissionJudged], table: dict[str, str]
) -> list[SubmissionJudged]:
    """faust_app's settle_batch."""
    out = []
    for verdict in verdicts:
        dk = device_key(verdict)
        first = table.get(dk) if dk else None
        final, after = settle_respondent(verdict, first)
        if dk and after is not None and after != first:
            table[dk] = after
        out.append(final)
    return out


def _received(sid: int, content: int, minute: int) -> SubmissionReceived:
    body = {"campaign": "c", "submission_id": f"s{sid}", "link_code": "L", "answers": {},
            "opinion": f"o{content}"}
    return SubmissionReceived(received_at=T0 + dt.timedelta(minutes=minute), body=body)


@PROPS
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 2)), min_size=1, max_size=25),
       st.data())
def test_assess_judges_a_redelivered_record_as_the_first_time(
    stream: list[tuple[int, int]], data: st.DataObject
) -> None:
    # Same id and content again: an identical resend; same id, other content: a conflict.
    records = [_received(sid, content, i) for i, (sid, content) in enumerate(stream)]
    n = len(records)
    k = data.draw(st.integers(0, n - 1), "committed up to")
    j = data.draw(st.integers(k, n), "writes kept up to")
    final_table: dict[str, list[str]] = {}
    first_pass = _assess_pass(records, final_table)
    kept: dict[str, list[str]] = {}
    _assess_pass(records[:j], kept)
    assert _assess_pass(records, kept, start=k) == first_pass[k:]
    assert kept == final_table


Status = Literal["accepted", "rejected", "test"]


def _verdict(
    sid: int, device: int, status: Status, resend_of: SubmissionJudged | None
) -> SubmissionJudged:
    if resend_of is not None:  # an identical resend: the same verdict again
        return resend_of
    reasons = (Reason.INVALID_ANSWER,) if status == "rejected" else ()
    return SubmissionJudged(
        submission_id=f"s{sid}", campaign="c", fingerprint=f"f{sid}", source_position="0:0",
        received_at=T0, status=status, reasons=reasons, rules_version="1",
        device_hash=f"d{device}" if device else "", first_of_id=True)


@PROPS
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 3),
                          st.sampled_from(list[Status](["accepted", "rejected", "test"]))),
                min_size=1, max_size=25),
       st.data())
def test_settle_judges_a_redelivered_record_as_the_first_time(
    stream: list[tuple[int, int, Status]], data: st.DataObject
) -> None:
    seen: dict[int, SubmissionJudged] = {}
    verdicts = []
    for sid, device, status in stream:
        v = _verdict(sid, device, status, seen.get(sid))
        seen.setdefault(sid, v)
        verdicts.append(v)
    n = len(verdicts)
    k = data.draw(st.integers(0, n - 1), "committed up to")
    j = data.draw(st.integers(k, n), "writes kept up to")
    final_table: dict[str, str] = {}
    first_pass = _settle_pass(verdicts, final_table)
    kept: dict[str, str] = {}
    _settle_pass(verdicts[:j], kept)
    again = _settle_pass(verdicts[k:], kept)
    assert kept == final_table  # the table ends as the first pass left it
    for i, (was, now) in enumerate(zip(first_pass[k:], again, strict=True), start=k):
        assert now.status == was.status  # counted exactly as the first time
        if now == was:
            continue
        # The one difference (faust_app's docstring): a rejected record of a device whose
        # first accepted submission comes later in the uncommitted stretch [k, j) gets
        # duplicate_respondent added on redelivery.
        claimer = final_table[device_key(was)]
        assert was.status == "rejected" and Reason.DUPLICATE_RESPONDENT not in was.reasons
        assert now == was.model_copy(update={"reasons": tuple(sorted(
            {*was.reasons, Reason.DUPLICATE_RESPONDENT}))})
        assert any(verdicts[m].submission_id == claimer for m in range(i + 1, j))


def test_a_record_that_claimed_its_device_is_judged_the_same_when_redelivered() -> None:
    accepted = _verdict(1, 1, "accepted", None)
    table: dict[str, str] = {}
    first = _settle_pass([accepted], table)
    assert table == {"c\x1fd1": "s1"}
    assert _settle_pass([accepted], table) == first  # own id is the device's first: unchanged
    assert table == {"c\x1fd1": "s1"}


def test_the_one_difference_a_rejected_record_before_its_devices_first_accepted_one() -> None:
    rejected, accepted = _verdict(1, 1, "rejected", None), _verdict(2, 1, "accepted", None)
    table: dict[str, str] = {}
    first = _settle_pass([rejected, accepted], table)
    assert [v.reasons for v in first] == [(Reason.INVALID_ANSWER,), ()]
    # Both writes kept, neither committed: the rejected one now sees the device as claimed.
    again = _settle_pass([rejected, accepted], table)
    assert again[1] == first[1]
    assert again[0].status == "rejected" and Reason.DUPLICATE_RESPONDENT in again[0].reasons
