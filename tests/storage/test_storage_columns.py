"""insert_judged's column-at-a-time conversion against the row-at-a-time one it replaced.

`sql.submission_columns` must give exactly the values `sql.submission_row` gives (transposed),
raise what it raises, and the store must end up with the same rows as inserting those tuples.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from collections.abc import Callable, Sequence
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import SubmissionJudged
from storage import SqlStore, sql

Judged = Callable[..., SubmissionJudged]

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


class Reason(enum.StrEnum):
    TOO_FAST = "too_fast"


class OldReason(str, enum.Enum):  # noqa: UP042 - str() gives "OldReason.X", not "x"
    X = "x"


def transposed(rows: Sequence[SubmissionJudged]) -> list[list[Any]]:
    return [list(c) for c in zip(*map(sql.submission_row, rows), strict=True)]


def varied(judged: Judged) -> list[SubmissionJudged]:
    """Verdicts covering every conversion: time zones, NULL client times, reasons, flags."""
    rows = [
        judged(1),
        judged(2, received_at=dt.datetime(2023, 9, 14, 10, 10, 5, 999_999, tzinfo=SHANGHAI),
               started_at=None, submitted_at=None),
        judged(3, started_at=dt.datetime(1900, 1, 1, tzinfo=dt.UTC),
               submitted_at=dt.datetime(2200, 1, 1, tzinfo=dt.UTC)),
        judged(4, started_at=dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
               submitted_at=dt.datetime(2106, 2, 7, 6, 28, 15, tzinfo=dt.UTC)),
        judged(5, status="rejected", reasons=("too_fast", "unknown_link", "")),
        judged(6, reasons=(Reason.TOO_FAST,), first_of_id=False, duration_seconds=0.0),
        judged(7, duration_seconds=-1.5e300, opinion="广东 🙂", answers_json="{}"),
        judged(8, received_at=dt.datetime(1970, 1, 1, tzinfo=dt.UTC)),
        judged(9, received_at=dt.datetime(2106, 2, 7, 6, 28, 15, tzinfo=dt.UTC)),
    ]
    # Parsed from JSON, as the sink reads them: pydantic's own tzinfo type.
    text = rows[0].model_dump_json()
    parsed = json.loads(text) | {
        "submission_id": "parsed", "started_at": "2023-09-14T10:01:02.5+08:00",
        "submitted_at": "2023-09-14T02:09:58-00:30",
    }
    rows.append(SubmissionJudged.model_validate_json(json.dumps(parsed)))
    # Built without validation: naive datetimes (taken as UTC), a reason that is not a str.
    rows.append(SubmissionJudged.model_construct(
        **(rows[0].model_dump() | {
            "submission_id": "constructed",
            "received_at": dt.datetime(2023, 9, 14, 2, 10),
            "started_at": dt.datetime(2023, 9, 14, 2, 1),
            "reasons": (OldReason.X,),
            "first_of_id": 0,
            "duration_seconds": 12,
        })
    ))
    return rows


def test_columns_are_the_rows_transposed(judged: Judged) -> None:
    rows = varied(judged)
    columns = sql.submission_columns(rows)
    assert columns == transposed(rows)
    # The same types too (== would take 1 == 1.0 == True).
    for got, want in zip(columns, transposed(rows), strict=True):
        assert [type(v) for v in got] == [type(v) for v in want]
        for g, w in zip(got, want, strict=True):
            if isinstance(w, list):
                assert [type(x) for x in g] == [type(x) for x in w]


def test_no_verdicts_give_empty_columns() -> None:
    assert sql.submission_columns([]) == [[] for _ in sql.SUBMISSION_COLUMNS]
    assert sql.column_keys(sql.field_columns([])) == []


def test_column_keys_are_verdict_key(judged: Judged) -> None:
    rows = varied(judged)
    want = [sql.verdict_key(j) for j in rows]
    assert sql.column_keys(sql.field_columns(rows)) == want
    assert sql.column_keys(sql.submission_columns(rows)) == want


@dataclasses.dataclass(frozen=True, slots=True)
class SlottedVerdict:
    """No __dict__: the conversion falls back to attribute access."""

    j: SubmissionJudged

    def __getattr__(self, name: str) -> Any:
        return getattr(self.j, name)


def test_a_verdict_without_a_dict_is_read_through_its_attributes(judged: Judged) -> None:
    rows = varied(judged)
    wrapped = cast(list[SubmissionJudged], [SlottedVerdict(j) for j in rows])
    assert sql.submission_columns(wrapped) == transposed(rows)
    assert sql.column_keys(sql.field_columns(wrapped)) == [sql.verdict_key(j) for j in rows]


def _error(call: Callable[[], object]) -> tuple[type[BaseException], str]:
    with pytest.raises(ValueError) as caught:
        call()
    return caught.type, str(caught.value)


@pytest.mark.parametrize("bad_first", ["received_at", "duration_seconds"])
def test_the_first_verdict_at_fault_gives_the_error(judged: Judged, bad_first: str) -> None:
    bad = {
        "received_at": {"received_at": dt.datetime(1969, 12, 31, 23, 59, 59, tzinfo=dt.UTC)},
        "duration_seconds": {"duration_seconds": float("nan")},
    }
    other = next(k for k in bad if k != bad_first)
    rows = [judged(1), judged(2, **bad[bad_first]), judged(3, **bad[other]), judged(4)]
    want = _error(lambda: [sql.submission_row(j) for j in rows])
    assert bad_first in want[1]
    assert _error(lambda: sql.submission_columns(rows)) == want
    late = [judged(1), judged(9, received_at=dt.datetime(2106, 2, 8, tzinfo=dt.UTC))]
    assert _error(lambda: sql.submission_columns(late)) == _error(
        lambda: [sql.submission_row(j) for j in late])
    inf = [judged(1, duration_seconds=float("-inf"))]
    assert _error(lambda: sql.submission_columns(inf)) == _error(
        lambda: [sql.submission_row(j) for j in inf])


aware = st.datetimes(
    min_value=dt.datetime(1960, 1, 1), max_value=dt.datetime(2200, 1, 1),
    timezones=st.sampled_from([dt.UTC, SHANGHAI, dt.timezone(dt.timedelta(hours=-9, minutes=-30))]),
)


@settings(max_examples=60, deadline=None)
@given(
    received=st.lists(
        st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2106, 2, 6),
                     timezones=st.just(dt.UTC)),
        min_size=1, max_size=6,
    ),
    client=st.lists(st.one_of(st.none(), aware), min_size=12, max_size=12),
    reasons=st.lists(st.text(max_size=5), max_size=3),
    duration=st.floats(allow_nan=False, allow_infinity=False),
)
def test_columns_match_rows_for_any_times(
    judged: Judged, received: list[dt.datetime], client: list[dt.datetime | None],
    reasons: list[str], duration: float,
) -> None:
    rows = [
        judged(i, received_at=r, started_at=client[2 * i], submitted_at=client[2 * i + 1],
               reasons=tuple(reasons[: i % 4]), duration_seconds=duration, first_of_id=i % 2 == 0)
        for i, r in enumerate(received)
    ]
    assert sql.submission_columns(rows) == transposed(rows)


def test_insert_judged_stores_what_inserting_the_rows_stored(
    store: SqlStore, judged: Judged
) -> None:
    rows = varied(judged)
    store._execute("CREATE TABLE submissions_by_row AS submissions")
    # The way insert_judged used to store them: one tuple per verdict.
    store._insert("submissions_by_row", sql.SUBMISSION_COLUMNS, list(map(sql.submission_row, rows)))
    assert store.insert_judged(rows) == len(rows)
    stored = ", ".join([*sql.READ_BACK_COLUMNS, "day", "hour"])

    def read(table: str) -> Sequence[Sequence[Any]]:
        return store._execute(
            f"SELECT {stored} FROM {table} ORDER BY campaign, submission_id, fingerprint"
        )

    assert read("submissions") == read("submissions_by_row")
    assert len(read("submissions")) == len(rows)


def test_insert_judged_skips_what_is_stored_and_keeps_the_rest_in_order(
    store: SqlStore, judged: Judged
) -> None:
    rows = varied(judged)
    assert store.insert_judged(rows[::2]) == len(rows[::2])
    assert store.insert_judged([*rows, rows[1]]) == len(rows[1::2])
    assert store.insert_judged(rows) == 0
    assert sorted(map(sql.verdict_key, rows)) == [
        (str(c), str(s), str(f))
        for c, s, f in store._execute(
            "SELECT campaign, submission_id, fingerprint FROM submissions"
            " ORDER BY campaign, submission_id, fingerprint"
        )
    ]


def test_a_refused_batch_leaves_the_store_usable_and_stores_nothing(
    store: SqlStore, judged: Judged
) -> None:
    good = [judged(i) for i in range(3)]
    assert store.insert_judged(good[:1]) == 1
    with pytest.raises(ValueError, match="duration_seconds"):
        store.insert_judged([*good, judged(9, duration_seconds=float("nan"))])
    assert store.insert_judged(good) == 2
    assert store.insert_judged(good) == 0


def test_of_verdicts_with_one_key_the_first_is_stored_and_only_it_is_checked(
    store: SqlStore, judged: Judged
) -> None:
    first = judged(1, unit="first")
    again = judged(1, unit="again", duration_seconds=float("nan"))  # never converted
    assert store.insert_judged([first, judged(2), again]) == 2
    assert store.judged_rows("2023", first.submission_id) == [first]
