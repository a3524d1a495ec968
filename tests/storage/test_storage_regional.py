"""Regional queries (breakdowns and answer distributions), the same tests on chDB and on the
ClickHouse server, checked against a recount in Python of a crafted set of verdicts."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from core.ports import BREAKDOWN_DIMENSIONS, BreakdownRow, RegionFilter, Store
from schemas.campaign import MultiQuestion, ScaleQuestion, SingleQuestion, TextQuestion
from schemas.events import SubmissionJudged
from storage import SqlStore, queries, sql
from tests.storage.test_storage_store import HOSTILE

Judged = Callable[..., SubmissionJudged]
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")

LINKS = {  # link -> (unit, province, work_region, channel), as attribution would credit them
    "Gd7kQ2xP": ("gd-cyber", "44", "south", "wechat"),
    "Gd7kQ2xQ": ("gd-cyber", "44", "south", "weibo"),
    "Gx1aB2cD": ("gx-net", "45", "south", "wechat"),
    "Sh9zY8xW": ("sh-uni", "31", "east", "web"),
    "NoSuch12": ("", "", "", ""),  # unknown link: credited to no one
}

Q_SCALE = ScaleQuestion(id="q1", type="scale", min=1, max=5, label="满意度")
Q_SINGLE = SingleQuestion(id="q2", type="single", options=["a", "b", "c"])
Q_MULTI = MultiQuestion(id="q3", type="multi", options=["a", "b", "c", "d"], max_choices=3)
Q_TEXT = TextQuestion(id="q4", type="text")
# Options JSON escapes or that contain what visitParamExtractRaw trips on; an id RE2 must escape.
Q_ODD = MultiQuestion(
    id="q.odd-1:x", type="multi",
    options=['他说"好"', "x]y", "back\\slash", "中文, 逗号", "[", "a"],
)


def shanghai(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2023, 9, day, hour, minute, tzinfo=SHANGHAI).astimezone(dt.UTC)


def crafted(judged: Judged) -> list[SubmissionJudged]:
    """Verdicts over four units, five links, days either side of a Shanghai midnight that is
    not a UTC midnight, every status, several reasons, and answers of every question type."""
    rows: list[SubmissionJudged] = []

    def add(n: int, link: str, at: dt.datetime, status: str = "accepted", *,
            reasons: tuple[str, ...] = (), phase: str = "collection",
            respondent: tuple[str, str] = ("44", "4401"),
            answers: Callable[[int], dict[str, Any]] = lambda k: {}) -> None:
        unit, province, region, channel = LINKS[link]
        for k in range(n):
            i = len(rows)
            rows.append(judged(
                i, received_at=at + dt.timedelta(seconds=k), status=status, reasons=reasons,
                phase=phase, link_code=link, unit=unit, province=province, work_region=region,
                channel=channel, respondent_province=respondent[0], respondent_city=respondent[1],
                answers_json=json.dumps(answers(k), ensure_ascii=False, sort_keys=True),
            ))

    add(10, "Gd7kQ2xP", shanghai(13, 10), answers=lambda k: {
        "q1": k % 5 + 1, "q2": "abc"[k % 3], "q3": [["a"], ["a", "c"], ["b", "c", "d"]][k % 3],
        "q4": ["很好", "", "再加强 \"宣传\""][k % 3], "q.odd-1:x": ['他说"好"', "x]y"]})
    add(3, "Gd7kQ2xQ", shanghai(14, 23, 30), answers=lambda k: {
        "q1": 5, "q2": "b", "q3": [], "q.odd-1:x": ["back\\slash", "中文, 逗号", "["]})
    # 00:30 on the 15th in Shanghai is still the 14th in UTC.
    add(2, "Gd7kQ2xQ", shanghai(15, 0, 30), respondent=("45", "4501"),
        answers=lambda k: {"q1": 4, "q2": "c", "q3": ["d"], "q4": "ok", "q.odd-1:x": ["a"]})
    add(4, "Gd7kQ2xP", shanghai(14, 10), "rejected", reasons=("too_fast",),
        answers=lambda k: {"q1": 1, "q2": "a", "q3": ["a"], "q4": "not counted"})
    add(1, "Gd7kQ2xP", shanghai(14, 10, 5), "rejected", reasons=("straight_lining", "too_fast"),
        answers=lambda k: {"q1": 1})
    add(5, "Gx1aB2cD", shanghai(14, 9), respondent=("44", "4403"),
        answers=lambda k: {"q1": 2, "q2": "a", "q3": ["a", "b"], "q4": "中文意见"})
    add(2, "Sh9zY8xW", shanghai(13, 20), respondent=("31", "3101"),
        answers=lambda k: {"q1": 3, "q2": "c"})
    add(3, "Gd7kQ2xP", shanghai(11, 12), "test", phase="public_test",
        answers=lambda k: {"q1": 1, "q2": "a"})
    add(2, "NoSuch12", shanghai(14, 11), "rejected", phase="collection",
        reasons=("unknown_link",), answers=lambda k: {"q1": 1})
    add(1, "Sh9zY8xW", shanghai(25, 8), "rejected", phase="", reasons=("outside_window",),
        respondent=("31", "3101"))
    return rows


# -- a recount in Python -----------------------------------------------------------------------

def dims(j: SubmissionJudged) -> dict[str, Any]:
    local = j.received_at.astimezone(SHANGHAI)
    return {
        "province": j.province, "work_region": j.work_region, "unit": j.unit,
        "link": j.link_code, "channel": j.channel, "respondent_province": j.respondent_province,
        "city": j.respondent_city, "day": local.date().isoformat(), "hour": local.hour,
        "status": j.status, "phase": j.phase,
    }


def in_scope(j: SubmissionJudged, f: RegionFilter) -> bool:
    d = dims(j)
    day = dt.date.fromisoformat(d["day"])
    return (
        all(getattr(f, name) in (None, d[name]) for name in
            ("province", "work_region", "unit", "link", "channel", "respondent_province",
             "city", "phase"))
        and (f.date_from is None or day >= f.date_from)
        and (f.date_to is None or day <= f.date_to)
    )


def recount(rows: Iterable[SubmissionJudged], by: list[str], f: RegionFilter
            ) -> dict[tuple[Any, ...], tuple[int, int, int]]:
    counts: dict[tuple[Any, ...], Counter[str]] = {}
    for j in rows:
        if not in_scope(j, f):
            continue
        for reason in j.reasons or ("",):
            d = {**dims(j), "reason": reason}
            counts.setdefault(tuple(d[n] for n in by), Counter())[j.status] += 1
            if "reason" not in by:
                break
    if not by:
        counts.setdefault((), Counter())
    return {k: (c["accepted"], c["rejected"], c["test"]) for k, c in counts.items()}


def as_map(rows: list[BreakdownRow], by: list[str]) -> dict[tuple[Any, ...], tuple[int, int, int]]:
    for row in rows:
        assert [name for name, _ in row.group] == by
    return {tuple(v for _, v in r.group): (r.valid, r.rejected, r.test) for r in rows}


GROUPINGS: list[list[str]] = [
    [], ["province"], ["province", "day"], ["work_region"], ["unit"], ["link"], ["channel"],
    ["unit", "link", "channel", "day", "hour"], ["day", "hour"], ["city"],
    ["respondent_province", "city"], ["status"], ["phase"], ["reason"], ["province", "reason"],
]
FILTERS: list[RegionFilter] = [
    RegionFilter(),
    RegionFilter(province="44"),
    RegionFilter(work_region="south"),
    RegionFilter(unit="gd-cyber"),
    RegionFilter(link="Gd7kQ2xP"),
    RegionFilter(channel="wechat"),
    RegionFilter(respondent_province="44"),
    RegionFilter(city="4403"),
    RegionFilter(date_from=dt.date(2023, 9, 13), date_to=dt.date(2023, 9, 14)),
    RegionFilter(date_from=dt.date(2023, 9, 15)),
    RegionFilter(phase="collection"),
    RegionFilter(work_region="south", channel="wechat", date_from=dt.date(2023, 9, 14)),
]


@pytest.fixture
def loaded(store: SqlStore, judged: Judged) -> list[SubmissionJudged]:
    rows = crafted(judged)
    assert store.insert_judged(rows) == len(rows)
    return rows


def test_both_adapters_satisfy_the_regional_port(store: SqlStore) -> None:
    port: Store = store
    assert callable(port.breakdown) and callable(port.answer_distribution)


def test_counts_by_province_and_day_are_exact(store: SqlStore, loaded: Any) -> None:
    got = as_map(store.breakdown("2023", ["province", "day"], RegionFilter()), ["province", "day"])
    assert got == {
        ("", "2023-09-14"): (0, 2, 0),  # the unknown link's sheets, credited to no province
        ("31", "2023-09-13"): (2, 0, 0),
        ("31", "2023-09-25"): (0, 1, 0),
        ("44", "2023-09-11"): (0, 0, 3),
        ("44", "2023-09-13"): (10, 0, 0),
        ("44", "2023-09-14"): (3, 5, 0),
        ("44", "2023-09-15"): (2, 0, 0),  # Shanghai's day, not UTC's
        ("45", "2023-09-14"): (5, 0, 0),
    }


def test_totals_and_a_filtered_total_are_one_row(store: SqlStore, loaded: Any) -> None:
    assert store.breakdown("2023", [], RegionFilter()) == [BreakdownRow((), 22, 8, 3)]
    none = store.breakdown("2023", [], RegionFilter(province="99"))
    assert none == [BreakdownRow((), 0, 0, 0)]
    assert store.breakdown("another", ["province"], RegionFilter()) == []


def test_every_grouping_under_every_filter_matches_a_recount(
    store: SqlStore, loaded: list[SubmissionJudged]
) -> None:
    for by in GROUPINGS:
        for f in FILTERS:
            got = as_map(store.breakdown("2023", by, f), by)
            assert got == recount(loaded, by, f), (by, f)


def test_rows_come_ordered_by_their_group_values(store: SqlStore, loaded: Any) -> None:
    rows = store.breakdown("2023", ["day", "hour"], RegionFilter())
    keys = [tuple(v for _, v in r.group) for r in rows]
    assert keys == sorted(keys) and len(keys) == len(set(keys))


def test_the_summing_table_answers_what_it_can_and_agrees_with_the_verdicts(
    store: SqlStore, loaded: Any
) -> None:
    assert queries.breakdown_source(["unit", "day"], RegionFilter(channel="wechat")) == (
        "link_hour_counts"
    )
    assert queries.breakdown_source(["unit"], RegionFilter(province="44")) == "unit_counts"
    assert queries.breakdown_source(["province", "day"], RegionFilter()) == "unit_counts"
    assert queries.breakdown_source(["unit"], RegionFilter(province="44", link="x")) == (
        "submissions"
    )
    assert queries.breakdown_source(["city"], RegionFilter()) == "submissions"
    assert queries.breakdown_source(["hour"], RegionFilter(phase="collection")) == "submissions"
    fast_groupings = [b for b in GROUPINGS if set(b) <= set(queries.ROLLUP_DIMENSIONS)]
    fast_filters = [f for f in FILTERS if queries.breakdown_source([], f) == "link_hour_counts"]
    assert len(fast_groupings) >= 5 and len(fast_filters) >= 5
    for by in fast_groupings:
        for f in fast_filters:
            rollup = store.breakdown("2023", by, f)
            base = store._breakdown(queries.breakdown_query("2023", by, f, source="submissions"))
            assert rollup == base, (by, f)
    unit_groupings = [b for b in GROUPINGS if set(b) <= set(queries.UNIT_DIMENSIONS)]
    unit_filters = [
        f for f in FILTERS if queries.breakdown_source(["province"], f) != "submissions"
    ]
    assert len(unit_groupings) >= 4 and len(unit_filters) >= 5
    for by in unit_groupings:
        for f in unit_filters:
            rollup = store._breakdown(queries.breakdown_query("2023", by, f, source="unit_counts"))
            base = store._breakdown(queries.breakdown_query("2023", by, f, source="submissions"))
            assert rollup == base, (by, f)


def test_a_verdict_stored_twice_behind_the_stores_back_counts_once_from_the_verdicts(
    store: SqlStore, judged: Judged
) -> None:
    rows = [judged(i) for i in range(4)]
    store.insert_judged(rows)
    # As if a second store process had raced this one on the same key: a copy in its own part.
    store._insert("submissions", sql.SUBMISSION_COLUMNS, [sql.submission_row(rows[1])])
    assert store.breakdown("2023", ["city"], RegionFilter()) == [
        BreakdownRow((("city", "4401"),), 4, 0, 0)
    ]
    dist = store.answer_distribution("2023", Q_SCALE, RegionFilter(city="4401"))
    assert (dist.accepted, dist.total) == (4, 4)
    # The summing tables saw the copy; the insert-once rule is what they rely on, and reconcile
    # is what shows a breach.
    assert store.breakdown("2023", ["unit"], RegionFilter()) == [
        BreakdownRow((("unit", "gd-cyber"),), 5, 0, 0)
    ]
    dist = store.answer_distribution("2023", Q_SCALE, RegionFilter())
    assert (dist.accepted, dist.total) == (5, 5)


def test_unknown_or_repeated_groupings_are_refused(store: SqlStore) -> None:
    for by in (["nope"], ["province; DROP TABLE submissions"], ["status", "status"],
               ["received_at"], ["Province"]):
        with pytest.raises(ValueError):
            store.breakdown("2023", by, RegionFilter())
    assert set(BREAKDOWN_DIMENSIONS) == set(queries.BASE_DIMENSIONS)


# -- answer distributions ----------------------------------------------------------------------

def test_scale_distribution_counts_accepted_answers_only(store: SqlStore, loaded: Any) -> None:
    d = store.answer_distribution("2023", Q_SCALE, RegionFilter())
    assert (d.question, d.type, d.accepted, d.total) == ("q1", "scale", 22, 22)
    # Gd7kQ2xP: k%5+1 over k=0..9 -> two of each; Gd7kQ2xQ: three 5s and two 4s; Gx: five 2s;
    # Sh: two 3s. Rejected and test sheets (all answering 1) are not there.
    assert d.counts == (("1", 2), ("2", 7), ("3", 4), ("4", 4), ("5", 5))


def test_single_choice_distribution_lists_every_option(store: SqlStore, loaded: Any) -> None:
    d = store.answer_distribution("2023", Q_SINGLE, RegionFilter(province="44"))
    assert (d.accepted, d.total) == (15, 15)
    assert d.counts == (("a", 4), ("b", 6), ("c", 5))
    d = store.answer_distribution("2023", Q_SINGLE, RegionFilter(unit="sh-uni"))
    assert d.counts == (("a", 0), ("b", 0), ("c", 2))


def test_multi_choice_distribution_counts_each_chosen_option(store: SqlStore, loaded: Any) -> None:
    d = store.answer_distribution("2023", Q_MULTI, RegionFilter(work_region="south"))
    # 20 accepted in the south; the two Sh sheets are east. [] (3 sheets) is not an answer.
    assert (d.type, d.accepted, d.total) == ("multi", 20, 17)
    # a: 4 (["a"]) + 3 (["a","c"]) + 5 (Gx) ; b: 3 + 5 ; c: 3 + 3 ; d: 3 + 2
    assert d.counts == (("a", 12), ("b", 8), ("c", 6), ("d", 5))


def test_text_distribution_is_only_the_number_answered(store: SqlStore, loaded: Any) -> None:
    d = store.answer_distribution("2023", Q_TEXT, RegionFilter())
    # Gd7kQ2xP: 7 of 10 non-empty; Gd7kQ2xQ at 00:30: 2; Gx: 5; none elsewhere.
    assert (d.type, d.accepted, d.total, d.counts) == ("text", 22, 14, ())
    d = store.answer_distribution("2023", Q_TEXT, RegionFilter(city="4403"))
    assert (d.accepted, d.total) == (5, 5)


def test_options_with_quotes_brackets_and_backslashes_are_counted_exactly(
    store: SqlStore, loaded: Any
) -> None:
    d = store.answer_distribution("2023", Q_ODD, RegionFilter())
    assert d.total == 15
    assert dict(d.counts) == {
        '他说"好"': 10, "x]y": 10, "back\\slash": 3, "中文, 逗号": 3, "[": 3, "a": 2,
    }
    assert [k for k, _ in d.counts] == Q_ODD.options


def test_distribution_filters_by_day_and_link(store: SqlStore, loaded: Any) -> None:
    f = RegionFilter(date_from=dt.date(2023, 9, 15), link="Gd7kQ2xQ")
    d = store.answer_distribution("2023", Q_SINGLE, f)
    assert (d.accepted, d.counts) == (2, (("a", 0), ("b", 0), ("c", 2)))
    d = store.answer_distribution("2023", Q_SINGLE, RegionFilter(phase="public_test"))
    assert (d.accepted, d.total) == (0, 0)  # test-phase sheets are never accepted


def test_a_value_outside_the_current_definition_is_still_shown(
    store: SqlStore, judged: Judged
) -> None:
    store.insert_judged([judged(0, answers_json='{"q2": "z"}'), judged(1, answers_json="{}")])
    d = store.answer_distribution("2023", Q_SINGLE, RegionFilter())
    assert (d.accepted, d.total) == (2, 1)
    assert d.counts == (("a", 0), ("b", 0), ("c", 0), ("z", 1))


def test_the_answer_counts_table_agrees_with_the_verdicts(
    store: SqlStore, loaded: Any, judged: Judged
) -> None:
    store.insert_judged([judged(90, answers_json='{"q2": "z", "q4": null}'),
                         judged(91, answers_json="{}")])
    served = [f for f in FILTERS if queries.answer_counts_query("2023", Q_SCALE, f) is not None]
    assert len(served) >= 7
    assert queries.answer_counts_query("2023", Q_SCALE, RegionFilter(city="4401")) is None
    for question in (Q_SCALE, Q_SINGLE, Q_MULTI, Q_TEXT, Q_ODD):
        for f in served:
            rollup = queries.tally_answer_counts(
                question, store._execute(str(queries.answer_counts_query("2023", question, f)))
            )
            base = queries.tally_answers(
                question, store._execute(queries.distribution_query("2023", question, f))
            )
            assert rollup == base, (question.id, f)
            d = store.answer_distribution("2023", question, f)
            assert (d.accepted, d.total, d.counts) == rollup


def test_the_answer_counts_view_extracts_answers_as_the_queries_do() -> None:
    text = (Path(sql.__file__).parent / "migrations" / "0004_answer_counts.sql").read_text()
    for pattern in (queries.ANSWER_PAIR, queries.ANSWER_KEY, queries.ANSWER_PREFIX):
        assert text.count(sql.literal(pattern)) == 2, pattern  # the view and the backfill


# -- hostile filter values ---------------------------------------------------------------------

TEXT_FILTERS = ("province", "work_region", "unit", "link", "channel", "respondent_province",
                "city", "phase")


def test_hostile_filter_values_are_literals_that_match_nothing(
    store: SqlStore, loaded: Any
) -> None:
    for name in TEXT_FILTERS:
        for text in HOSTILE:
            if text == "" and name in ("province", "work_region", "unit", "channel", "phase"):
                continue  # "" is a real value here (the unknown link's, the late sheet's phase)
            f = RegionFilter(**{name: text})
            assert store.breakdown("2023", ["province"], f) == [], (name, text)
            assert store.breakdown("2023", ["city"], f) == [], (name, text)
            assert store.breakdown("2023", [], f) == [BreakdownRow((), 0, 0, 0)], (name, text)
            d = store.answer_distribution("2023", Q_MULTI, f)
            assert (d.accepted, d.total) == (0, 0), (name, text)
    assert store.breakdown("2023", [], RegionFilter())[0].valid == 22  # nothing was dropped
    assert store.breakdown("'); DROP TABLE submissions; --", [], RegionFilter()) == [
        BreakdownRow((), 0, 0, 0)
    ]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_values_stored_in_verdicts_are_matched_exactly(
    store: SqlStore, judged: Judged, text: str
) -> None:
    store.insert_judged([
        judged(0, channel=text, respondent_city=text, phase=text),
        judged(1, channel=text + "x", respondent_city="x" + text, phase="p"),
    ])
    for f in (RegionFilter(channel=text), RegionFilter(city=text), RegionFilter(phase=text)):
        assert store.breakdown("2023", ["channel", "city"], f) == [
            BreakdownRow((("channel", text), ("city", text)), 1, 0, 0)
        ]
        assert store.answer_distribution("2023", Q_SINGLE, f).accepted == 1
