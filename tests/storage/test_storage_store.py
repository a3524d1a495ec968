"""The Store port's behaviour, the same tests on chDB and on the ClickHouse server."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.counting import Count, tally
from core.ports import JudgeMemoryRow, RegionFilter, Store
from schemas.events import SubmissionJudged
from storage import SqlStore, migrations, open_store, sql
from tests.storage.support import drop

Judged = Callable[..., SubmissionJudged]

HOSTILE = [
    "it's",
    "back\\slash",
    "\\'",
    "'); DROP TABLE submissions; --",
    "\\'); DROP TABLE submissions; --",
    "广东省网络空间安全协会",
    "line one\nline two\r\n\ttabbed",
    "nul\0inside",
    "trailing backslash\\",
    "\\0 \\n \\x41 \\u4e2d",  # escape sequences as literal text
    "emoji 🙂 and ́combining",
    "",
]


def memory_row(j: SubmissionJudged) -> JudgeMemoryRow:
    return JudgeMemoryRow(j.campaign, j.submission_id, j.fingerprint, j.first_of_id,
                          j.device_hash, j.status)


def mixed_batch(judged: Judged) -> list[SubmissionJudged]:
    rows = [judged(i) for i in range(30)]
    rows += [judged(100 + i, status="rejected", reasons=("too_fast",)) for i in range(7)]
    rows += [judged(200 + i, status="test", phase="public_test") for i in range(5)]
    rows += [judged(300 + i, unit="gx-net", province="45") for i in range(4)]
    rows += [judged(400, unit="", link_code="", status="rejected", reasons=("unknown_link",))]
    return rows


def test_both_adapters_satisfy_the_store_port(store: SqlStore) -> None:
    port: Store = store  # checked by mypy; here only that the names exist
    for name in ("migrate", "insert_judged", "unit_counts", "exact_unit_counts",
                 "submission_status", "iter_judge_memory", "close"):
        assert callable(getattr(port, name))


def test_migrations_apply_once_and_are_recorded(store_url: str) -> None:
    names = [m.name for m in migrations.load()]
    assert names == sorted(names) and names[0].startswith("0001_")
    with open_store(store_url) as store:
        assert store.migrate() == names
        assert store.migrate() == []
        assert store.applied_migrations() == set(names)
    with open_store(store_url) as again:  # recorded in the database, not in the process
        assert again.migrate() == []
        rows = again._execute("SELECT name, count() FROM schema_migrations GROUP BY name")
        assert {str(name): int(n) for name, n in rows} == dict.fromkeys(names, 1)


def test_counts_follow_inserted_verdicts(store: SqlStore, judged: Judged) -> None:
    rows = mixed_batch(judged)
    assert store.insert_judged(rows) == len(rows)
    expected = tally(rows).for_campaign("2023")
    assert store.unit_counts("2023") == expected
    assert store.exact_unit_counts("2023") == expected
    assert expected["gd-cyber"] == Count(valid=30, rejected=7, test=5)
    assert store.unit_counts("another campaign") == {}


def test_an_insert_writes_one_count_row_per_key_it_touches(
    store: SqlStore, judged: Judged
) -> None:
    """The count views group each inserted block (0013): a batch of many verdicts of one unit
    and hour adds one row to unit_counts and link_hour_counts, not one per verdict. Catches a
    view without GROUP BY, which leaves the tables one row per sheet until parts merge (at
    10 M sheets, 1.6 M rows that every regional read sums)."""
    rows = mixed_batch(judged)  # 46 verdicts; every one within the same Shanghai hour
    assert store.insert_judged(rows) == len(rows)
    units = store._execute("SELECT count() FROM unit_counts")[0][0]
    links = store._execute("SELECT count() FROM link_hour_counts")[0][0]
    assert (int(units), int(links)) == (2, 2)  # (gd-cyber, 44) and (gx-net, 45); the unknown
    # link's verdict has no unit or link and is read from submissions instead


def test_the_same_batch_twice_leaves_counts_unchanged(store: SqlStore, judged: Judged) -> None:
    rows = mixed_batch(judged)
    assert store.insert_judged(rows) == len(rows)
    before = store.unit_counts("2023")
    assert store.insert_judged(rows) == 0
    assert store.insert_judged([*reversed(rows[:10]), judged(999)]) == 1
    after = store.unit_counts("2023")
    assert after["gd-cyber"].valid == before["gd-cyber"].valid + 1
    assert after == store.exact_unit_counts("2023")


def test_an_identical_row_twice_in_a_batch_is_counted_once(store: SqlStore, judged: Judged) -> None:
    row = judged(1)
    assert store.insert_judged([row, row, judged(2), row]) == 2
    assert store.unit_counts("2023") == {"gd-cyber": Count(valid=2)}
    assert len(list(store.iter_judge_memory())) == 2


def test_an_empty_batch_inserts_nothing(store: SqlStore) -> None:
    assert store.insert_judged([]) == 0
    assert store.unit_counts("2023") == {}


@pytest.mark.parametrize("resend_first", [False, True])
def test_a_conflicting_resend_leaves_the_first_verdict_as_the_status(
    store: SqlStore, judged: Judged, resend_first: bool
) -> None:
    first = judged(1)
    resend = judged(1, fingerprint="other", first_of_id=False, status="rejected",
                    reasons=("duplicate_submission",), received_at=first.received_at
                    + dt.timedelta(minutes=5))
    batch = [resend, first] if resend_first else [first, resend]
    assert store.insert_judged(batch) == 2
    status = store.submission_status("2023", first.submission_id)
    assert status is not None
    assert (status.status, status.reasons, status.unit, status.province) == (
        "accepted", (), "gd-cyber", "44")
    # Both verdicts are stored; one sheet is counted, the resend listed apart (CONTRACT §6).
    assert store.unit_counts("2023") == {"gd-cyber": Count(valid=1)}
    (total,) = store.breakdown("2023", [], RegionFilter())
    assert (total.valid, total.rejected, total.conflicts) == (1, 0, 1)
    (exact,) = store.breakdown("2023", ["phase"], RegionFilter())
    assert (exact.valid, exact.rejected, exact.conflicts) == (1, 0, 1)
    assert [r.fingerprint for r in store.judged_rows("2023", first.submission_id)] == [
        first.fingerprint, "other"]


def test_an_unknown_submission_has_no_status(store: SqlStore, judged: Judged) -> None:
    store.insert_judged([judged(1)])
    assert store.submission_status("2023", "no-such-id") is None
    assert store.submission_status("2024", judged(1).submission_id) is None


def test_every_field_round_trips(store: SqlStore, judged: Judged) -> None:
    row = judged(1, reasons=("too_fast", "straight_lining"), first_of_id=False,
                 duration_seconds=0.1, started_at=None)
    store.insert_judged([row])
    (back,) = store.judged_rows("2023", row.submission_id)
    assert back == row


def test_datetimes_keep_whole_seconds_in_utc(store: SqlStore, judged: Judged) -> None:
    shanghai = dt.timezone(dt.timedelta(hours=8))
    row = judged(1, received_at=dt.datetime(2023, 9, 14, 10, 10, 5, 999_999, tzinfo=shanghai),
                 started_at=dt.datetime(2023, 9, 14, 2, 1, 2, tzinfo=dt.UTC))
    store.insert_judged([row])
    (back,) = store.judged_rows("2023", row.submission_id)
    assert back.received_at == dt.datetime(2023, 9, 14, 2, 10, 5, tzinfo=dt.UTC)
    assert back.started_at == dt.datetime(2023, 9, 14, 2, 1, 2, tzinfo=dt.UTC)
    day, hour = store._execute("SELECT day, hour FROM submissions")[0]
    assert (str(day), int(hour)) == ("2023-09-14", 10)  # Asia/Shanghai


def test_client_times_datetime_cannot_hold_are_stored_as_null(
    store: SqlStore, judged: Judged
) -> None:
    row = judged(1, started_at=dt.datetime(1900, 1, 1, tzinfo=dt.UTC),
                 submitted_at=dt.datetime(2200, 1, 1, tzinfo=dt.UTC))
    assert store.insert_judged([row]) == 1
    (back,) = store.judged_rows("2023", row.submission_id)
    assert (back.started_at, back.submitted_at) == (None, None)


def test_a_verdict_that_cannot_be_stored_fails_the_whole_batch(
    store: SqlStore, judged: Judged
) -> None:
    with pytest.raises(ValueError, match="duration_seconds"):
        store.insert_judged([judged(1), judged(2, duration_seconds=float("nan"))])
    assert store.unit_counts("2023") == {}


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_strings_round_trip_exactly(store: SqlStore, judged: Judged, text: str) -> None:
    row = judged(
        1, campaign="c" + text, submission_id="s" + text, fingerprint=text, unit="u" + text,
        province=text, work_region=text, link_code="l" + text, channel=text,
        reasons=(text, "r" + text), device_hash=text, answers_json=text, opinion=text,
        client=text, source_position=text, rules_version=text, age_group=text,
    )
    assert store.insert_judged([row]) == 1
    assert store.insert_judged([row]) == 0  # found again through the same escaping
    assert store.judged_rows(row.campaign, row.submission_id) == [row]
    status = store.submission_status(row.campaign, row.submission_id)
    assert status is not None
    assert (status.submission_id, status.reasons, status.unit, status.province) == (
        row.submission_id, row.reasons, row.unit, row.province)
    assert store.unit_counts(row.campaign) == {row.unit: Count(valid=1)}
    assert store.exact_unit_counts(row.campaign) == {row.unit: Count(valid=1)}
    assert list(store.iter_judge_memory(page_size=1)) == [memory_row(row)]
    assert store._execute("SELECT count() FROM submissions")[0][0] in (1, "1")


def test_iter_judge_memory_returns_every_verdict(store: SqlStore, judged: Judged) -> None:
    rows = [judged(i, campaign=f"c{i % 3}", first_of_id=i % 5 != 0,
                   status=("accepted", "rejected", "test")[i % 3]) for i in range(1000)]
    # Resends of the same id sort next to it: pages must not split or drop them.
    rows += [judged(i, campaign=f"c{i % 3}", fingerprint=f"fp{i}-b", first_of_id=False)
             for i in range(0, 1000, 7)]
    for start in range(0, len(rows), 250):
        store.insert_judged(rows[start : start + 250])
    for page_size in (1, 7, 100, 10_000):
        got = list(store.iter_judge_memory(page_size=page_size))
        assert len(got) == len(rows)
        assert sorted(got, key=repr) == sorted(map(memory_row, rows), key=repr)
    keys = [(r.campaign, r.submission_id, r.fingerprint) for r in got]
    assert keys == sorted(keys)


def test_a_verdict_stored_twice_behind_the_stores_back_is_remembered_and_counted_once(
    store: SqlStore, judged: Judged
) -> None:
    rows = [judged(i) for i in range(5)]
    store.insert_judged(rows)
    # As if another writer bypassed the check: the same verdict again, in a separate part.
    store._insert("submissions", sql.SUBMISSION_COLUMNS, [sql.submission_row(rows[2])])
    assert len(list(store.iter_judge_memory(page_size=2))) == 5
    assert len(list(store.iter_judge_memory(page_size=3))) == 5
    assert store.exact_unit_counts("2023") == {"gd-cyber": Count(valid=5)}
    # The view saw it twice; that is exactly what reconcile is there to show.
    assert store.unit_counts("2023") == {"gd-cyber": Count(valid=6)}


def test_concurrent_inserts_of_overlapping_batches_count_each_verdict_once(
    store: SqlStore, judged: Judged
) -> None:
    rows = [judged(i) for i in range(400)]
    inserted: list[int] = []
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for start in range(offset, 400, 50):
                inserted.append(store.insert_judged(rows[start : start + 100]))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k * 25,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(inserted) == 400
    assert store.unit_counts("2023") == {"gd-cyber": Count(valid=400)}


def test_link_hour_counts_are_kept_per_link_and_shanghai_hour(
    store: SqlStore, judged: Judged
) -> None:
    store.insert_judged([judged(1), judged(2, status="rejected"),
                         judged(3, received_at=dt.datetime(2023, 9, 14, 16, 30, tzinfo=dt.UTC)),
                         judged(4, link_code="", unit="")])
    rows = store._execute(
        "SELECT link_code, channel, unit, toString(day), hour, sum(valid), sum(rejected)"
        " FROM link_hour_counts GROUP BY link_code, channel, unit, day, hour ORDER BY day, hour")
    as_ints = [tuple(int(v) if isinstance(v, str) and v.isdigit() else v for v in r) for r in rows]
    assert as_ints == [
        ("Gd7kQ2xP", "wechat", "gd-cyber", "2023-09-14", 10, 1, 1),
        ("Gd7kQ2xP", "wechat", "gd-cyber", "2023-09-15", 0, 1, 0),
    ]


def test_data_survives_closing_and_reopening(store_url: str, judged: Judged) -> None:
    with open_store(store_url) as store:
        store.migrate()
        store.insert_judged([judged(1), judged(2, status="test")])
    with open_store(store_url) as again:
        assert again.migrate() == []
        assert again.unit_counts("2023") == {"gd-cyber": Count(valid=1, test=1)}
        assert again.insert_judged([judged(1)]) == 0


def test_chdb_ignores_a_config_xml_in_the_working_directory(
    chdb_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, judged: Judged
) -> None:
    (tmp_path / "config.xml").write_text("<clickhouse><path>/nonexistent/</path>broken")
    monkeypatch.chdir(tmp_path)
    with open_store(f"chdb://{chdb_dir}?database=cwd_config") as store:
        store.migrate()
        assert store.insert_judged([judged(1)]) == 1
        drop(store)


# -- the escaping function against both engines -------------------------------------------------

def _select(engine: SqlStore, value: object) -> object:
    return engine._execute("SELECT " + sql.literal(value))[0][0]


@pytest.mark.parametrize("text", HOSTILE)
def test_string_literals_read_back_exactly(engine: SqlStore, text: str) -> None:
    assert _select(engine, text) == text
    assert [str(v) for v in _select(engine, [text, text + "'"])] == [text, text + "'"]  # type: ignore[attr-defined]
    rows = engine._execute(f"SELECT 1 WHERE {sql.literal(text)} IN {sql.in_list([text, 'x'])}")
    assert len(rows) == 1


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_reads_back_exactly(engine: SqlStore, text: str) -> None:
    assert _select(engine, text) == text


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-(2**63), max_value=2**64 - 1))
def test_integers_read_back_exactly(engine: SqlStore, number: int) -> None:
    assert int(_select(engine, number)) == number  # type: ignore[call-overload]


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=False))
def test_floats_read_back_exactly(engine: SqlStore, number: float) -> None:
    assert float(_select(engine, number)) == number  # type: ignore[arg-type]


def test_repair_counts_what_the_view_missed_and_never_counts_twice(
    store: SqlStore, judged: Judged
) -> None:
    rows = [judged(i) for i in range(5)]
    store.insert_judged(rows)
    before = store.unit_counts("2023")
    assert before == store.exact_unit_counts("2023") and before
    # As after a crash between the base insert and the view's: stored but not counted.
    store._execute("TRUNCATE TABLE unit_counts")
    assert store.unit_counts("2023") == {}
    store.repair_counts()
    assert store.unit_counts("2023") == before
    store.repair_counts()
    assert store.unit_counts("2023") == before
