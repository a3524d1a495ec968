"""Exports (issue #17, CONTRACT §9) against both stores: every format read back by a reader that
is not ours (pandas, pyarrow, pyreadstat, openpyxl) and compared with what the store holds; the
accepted rows per unit against the leaderboard's counts; filters; review decisions; the cut;
refusals."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pyarrow.parquet as pq
import pyreadstat
import pytest

from core.ports import RegionFilter
from core.registry import CampaignState, Registry
from exports.columns import FIXED
from exports.run import Export, ExportError, ExportRequest, StoreChanged
from schemas.campaign import CampaignDefinition
from schemas.events import CampaignDefined, ReviewDecided, SubmissionJudged
from storage import SqlStore, standing
from tests.helpers import campaign_definition

Judged = Callable[..., SubmissionJudged]
OPINION = "希望加强个人信息保护，联系我 138****5678"
HASHES = ("device_hash", "device_id", "client", "network")


def state() -> CampaignState:
    defn = campaign_definition("2023")
    labels = {"q1": "总体安全感", "q2": "最常用的平台", "q3": "遇到过哪些问题", "q4": "其他想法"}
    for q in defn["questionnaire"]["questions"]:
        q["label"] = labels.get(q["id"], "")
    registry = Registry()
    registry.apply(CampaignDefined(
        campaign="2023", defined_at=dt.datetime(2023, 9, 1, tzinfo=dt.UTC),
        definition=CampaignDefinition.model_validate(defn)))
    found = registry.get("2023")
    assert found is not None
    return found


def answers(i: int, **extra: Any) -> str:
    values: dict[str, Any] = {"q1": i % 5 + 1, "q2": "abc"[i % 3],
                              "q3": ["a", "c"] if i % 2 else ["b"], "q4": f"第{i}条\n第二行",
                              "s1": 3, **extra}
    return json.dumps(values, ensure_ascii=False, sort_keys=True)


EAST = {"unit": "sh-uni", "province": "31", "work_region": "east", "link_code": "Sh9zY8xW",
        "channel": "web"}


def load(store: SqlStore, judged: Judged) -> dict[str, SubmissionJudged]:
    """20 sheets: gd-cyber 0-11 (every third rejected), sh-uni 12-17, a test-phase sheet, an
    unknown link; plus a conflicting resend of sheet 0 (kept, not a sheet)."""
    rows: dict[str, SubmissionJudged] = {}
    for i in range(12):
        rejected = i % 3 == 0
        rows[f"g{i}"] = judged(
            i, status="rejected" if rejected else "accepted",
            reasons=("too_fast",) if rejected else (), answers_json=answers(i),
            opinion=OPINION if i % 2 else "")
    for i in range(12, 18):
        rows[f"e{i}"] = judged(i, answers_json=answers(i), opinion=OPINION, **EAST)
    rows["test"] = judged(18, status="test", phase="public_test", answers_json=answers(18))
    rows["unknown"] = judged(20, status="rejected", reasons=("unknown_link",), unit="",
                             province="", work_region="", channel="", link_code="NoSuch12",
                             answers_json=answers(20, q1="x"))
    rows["resend"] = judged(0, fingerprint="other", first_of_id=False, status="rejected",
                            reasons=("duplicate_submission",), answers_json=answers(99))
    store.insert_judged(list(rows.values()))
    return rows


def export(store: SqlStore, fmt: str, path: Path, **given: Any) -> tuple[Export, dict[str, Any]]:
    limit = given.pop("xlsx_max_rows", None)
    request = ExportRequest("2023", fmt, **given)
    e = Export(store, state(), request, **({"xlsx_max_rows": limit} if limit else {}))
    return e, e.write(path)


def read(fmt: str, path: Path) -> pd.DataFrame:
    """The data rows as a data frame, by a reader independent of the writer."""
    if fmt == "csv":
        assert path.read_bytes()[:3] == b"\xef\xbb\xbf"  # the BOM
        return pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    if fmt == "parquet":
        return pq.read_table(path).to_pandas()
    if fmt == "sav":
        frame, _ = pyreadstat.read_sav(str(path))
        return frame
    book = openpyxl.load_workbook(path, read_only=True)
    assert book.sheetnames == ["data", "codebook"]
    values = list(book["data"].iter_rows(values_only=True))
    return pd.DataFrame(values[1:], columns=values[0])


def expected_columns() -> list[str]:
    return [c.name for c in FIXED] + [
        "q1", "q2", "q3_a", "q3_b", "q3_c", "q3_d", "q4", "s1", "s2", "s3", "s4", "opinion"]


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "sav", "parquet"])
def test_every_format_reads_back_as_the_store_holds_it(
    store: SqlStore, judged: Judged, tmp_path: Path, fmt: str
) -> None:
    rows = load(store, judged)
    path = tmp_path / f"out.{fmt}"
    e, codebook = export(store, fmt, path, status="all")
    frame = read(fmt, path)

    assert list(frame.columns) == expected_columns()  # the contract's order, nothing else
    assert not set(HASHES) & set(frame.columns)
    # One row per sheet: the conflicting resend of sheet 0 is not one.
    assert len(frame) == e.total == codebook["rows"] == 20
    assert sorted(frame["submission_id"]) == sorted(
        r.submission_id for k, r in rows.items() if k != "resend")
    by_id = frame.set_index("submission_id")

    g1 = by_id.loc[rows["g1"].submission_id]  # q3 = [a, c]
    assert [int(float(g1[f"q3_{o}"])) for o in "abcd"] == [1, 0, 1, 0]
    assert g1["opinion"] == OPINION  # Chinese text, unchanged
    assert g1["q4"] == "第1条\n第二行"
    g0 = by_id.loc[rows["g0"].submission_id]
    assert g0["status"] == "rejected" and g0["reasons"] == "too_fast"
    assert g0["q1"] != "x"  # the resend's answers never show up
    assert by_id.loc[rows["e12"].submission_id]["unit_name"] == "上海某大学"
    assert by_id.loc[rows["test"].submission_id]["status"] == "test"
    if fmt == "sav":
        _, meta = pyreadstat.read_sav(str(path), metadataonly=True)
        labels = meta.column_names_to_labels
        assert labels["q1"] == "总体安全感" and labels["q3_c"] == "遇到过哪些问题: c"
        assert meta.variable_value_labels["q2"] == {1.0: "a", 2.0: "b", 3.0: "c"}
        assert meta.variable_value_labels["q3_a"] == {0.0: "not chosen", 1.0: "chosen"}
        assert g1["q2"] == 2.0  # "b", coded
    else:
        assert str(g1["received_at"]).startswith("2023-09-14")
        assert g1["q2"] == "b"
    if fmt == "csv":
        raw = path.read_bytes()
        assert b"dev1" not in raw and b"c1\"" not in raw  # no device hash, no client hash
        assert g1["received_at"] == "2023-09-14T10:10:01+08:00"
    if fmt == "parquet":
        schema = pq.read_schema(path)
        assert str(schema.field("q1").type) == "int64"
        assert str(schema.field("q3_a").type) == "int8"
        assert str(schema.field("received_at").type).startswith("timestamp")
    # A value of the wrong type (a rejected sheet keeps it) is empty in a numeric column.
    unknown = by_id.loc[rows["unknown"].submission_id]
    assert unknown["q1"] in ("", None) or pd.isna(unknown["q1"])


def test_accepted_rows_per_unit_equal_the_leaderboards_valid(
    store: SqlStore, judged: Judged, tmp_path: Path
) -> None:
    rows = load(store, judged)
    store.apply_review(ReviewDecided(
        decision_id="d1", campaign="2023", action="invalid", reason="padding", reviewer="r",
        decided_at=dt.datetime.now(dt.UTC), submission_ids=(rows["g1"].submission_id,)))
    store.apply_review(ReviewDecided(
        decision_id="d2", campaign="2023", action="valid", reason="appeal", reviewer="r",
        decided_at=dt.datetime.now(dt.UTC), submission_ids=(rows["g3"].submission_id,)))
    _, codebook = export(store, "csv", tmp_path / "a.csv")
    frame = read("csv", tmp_path / "a.csv")
    assert set(frame["status"]) == {"accepted"}
    from_file = frame["unit"].value_counts().to_dict()
    valid = {u: c.valid for u, c in store.unit_counts("2023").items() if c.valid}
    assert from_file == valid == {"gd-cyber": 8, "sh-uni": 6}
    assert {u: s["accepted"] for u, s in codebook["rows_by_unit"].items()} == valid
    assert dt.datetime.fromisoformat(codebook["as_of"]).utcoffset() == dt.timedelta(hours=8)


def test_a_region_filter_gives_only_its_region(
    store: SqlStore, judged: Judged, tmp_path: Path
) -> None:
    load(store, judged)
    east, codebook = export(store, "parquet", tmp_path / "east.parquet", status="all",
                            filters=RegionFilter(work_region="east"))
    frame = read("parquet", tmp_path / "east.parquet")
    assert len(frame) == 6 and set(frame["work_region"]) == {"east"}
    assert codebook["filters"] == {"work_region": "east"}
    # The same rows: the first export's as-of spares a second wait for the store's clock.
    _, _ = export(store, "csv", tmp_path / "gd.csv", status="all", as_of=east.as_of,
                  filters=RegionFilter(province="44", date_from=dt.date(2023, 9, 14),
                                       date_to=dt.date(2023, 9, 14)))
    gd = read("csv", tmp_path / "gd.csv")
    assert len(gd) == 13 and set(gd["province"]) == {"44"}  # 12 + the test-phase sheet


def test_an_export_after_a_review_decision_moves_the_reviewed_sheet(
    store: SqlStore, judged: Judged, tmp_path: Path
) -> None:
    rows = load(store, judged)
    sid = rows["e12"].submission_id
    export(store, "csv", tmp_path / "before.csv")
    assert sid in set(read("csv", tmp_path / "before.csv")["submission_id"])
    store.apply_review(ReviewDecided(
        decision_id="d1", campaign="2023", action="invalid", reason="bot farm", reviewer="r",
        decided_at=dt.datetime.now(dt.UTC), link_code="Sh9zY8xW",
        window_start=dt.datetime(2023, 9, 14, tzinfo=dt.UTC),
        window_end=dt.datetime(2023, 9, 15, tzinfo=dt.UTC)))
    e, _ = export(store, "csv", tmp_path / "after.csv")
    after = read("csv", tmp_path / "after.csv")
    assert sid not in set(after["submission_id"]) and len(after) == 8
    export(store, "csv", tmp_path / "all.csv", status="all", as_of=e.as_of)
    everything = read("csv", tmp_path / "all.csv").set_index("submission_id")
    assert everything.loc[sid]["status"] == "rejected"


def test_an_export_as_of_an_earlier_time_leaves_out_what_came_later(
    store: SqlStore, judged: Judged, tmp_path: Path
) -> None:
    """Breaks if the cut on inserted_at is dropped: the later sheet would be exported."""
    load(store, judged)
    first, _ = export(store, "csv", tmp_path / "first.csv", status="all")
    deadline = time.monotonic() + 5
    while store.clock() < first.cut + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    store.insert_judged([judged(50, answers_json=answers(50))])
    again, codebook = export(store, "csv", tmp_path / "again.csv", status="all",
                             as_of=first.as_of)
    assert again.total == first.total == 20
    assert codebook["as_of"] == first.as_of.isoformat()
    now, _ = export(store, "csv", tmp_path / "now.csv", status="all")
    assert now.total == 21


def test_the_export_reads_the_one_standing_rule_with_its_cut(
    store: SqlStore, judged: Judged, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Catches a second copy of the standing rule (before the fix storage/sheets.py repeated
    storage/standing.py's with its own cut, and standing's had none): the sheets as of a cut
    leave out a verdict and a review decision stored after it, the sheet that decision covers
    keeps its earlier status, and the export's rows are exactly those, read through
    standing.sheets_sql."""
    rows = load(store, judged)
    first, _ = export(store, "csv", tmp_path / "first.csv", status="all")
    deadline = time.monotonic() + 5
    while store.clock() < first.cut + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    later = judged(50, answers_json=answers(50))
    store.insert_judged([later])
    covered = rows["g2"].submission_id  # accepted when judged
    store.apply_review(ReviewDecided(
        decision_id="after-cut", campaign="2023", action="invalid", reason="padding",
        reviewer="r", decided_at=dt.datetime.now(dt.UTC), submission_ids=(covered,)))

    def statuses(cut: int | None) -> dict[str, str]:
        with store._lock:
            found = store._execute(
                f"SELECT submission_id, status FROM {standing.sheets_sql('2023', cut=cut)}")
        return {str(sid): str(status) for sid, status in found}

    then, now = statuses(first.cut), statuses(None)
    assert later.submission_id not in then and now[later.submission_id] == "accepted"
    assert then[covered] == "accepted" and now[covered] == "rejected"
    assert {k: v for k, v in now.items() if k not in (covered, later.submission_id)} == {
        k: v for k, v in then.items() if k != covered}

    calls: list[int | None] = []
    rule = standing.sheets_sql

    def spy(campaign: str, **kw: Any) -> str:
        calls.append(kw.get("cut"))
        return rule(campaign, **kw)

    monkeypatch.setattr(standing, "sheets_sql", spy)
    again, _ = export(store, "csv", tmp_path / "again.csv", status="all", as_of=first.as_of)
    assert calls and set(calls) == {first.cut}
    frame = read("csv", tmp_path / "again.csv")
    assert dict(zip(frame["submission_id"], frame["status"], strict=True)) == then
    assert again.total == len(then) == 20


def test_xlsx_past_the_row_limit_is_refused_with_a_way_out(
    store: SqlStore, judged: Judged, tmp_path: Path
) -> None:
    load(store, judged)
    e, _ = export(store, "xlsx", tmp_path / "fits.xlsx", status="all", xlsx_max_rows=20)
    assert e.rows == 20
    with pytest.raises(ExportError, match="csv or parquet"):
        export(store, "xlsx", tmp_path / "big.xlsx", status="all", xlsx_max_rows=19,
               as_of=e.as_of)
    assert not (tmp_path / "big.xlsx").exists()


def test_bad_requests_are_refused_before_anything_is_written(
    store: SqlStore, judged: Judged, tmp_path: Path
) -> None:
    for request, message in [
        (ExportRequest("2023", "json"), "unknown format 'json'"),
        (ExportRequest("2023", "csv", status="valid"), "unknown status"),
        (ExportRequest("2023", "csv", as_of=dt.datetime(2099, 1, 1, tzinfo=dt.UTC)),
         "not in the past"),
        (ExportRequest("2023", "csv", filters=RegionFilter(
            date_from=dt.date(2023, 9, 2), date_to=dt.date(2023, 9, 1))), "after date_to"),
    ]:
        with pytest.raises(ExportError, match=message):
            Export(store, state(), request)
    with pytest.raises(ExportError, match="unknown campaign"):
        Export(store, None, ExportRequest("nope", "csv"))


def test_a_store_that_changes_under_an_export_fails_it(
    store: SqlStore, judged: Judged, tmp_path: Path
) -> None:
    """Breaks if streamed rows are not checked against the counts at the cut: an erase running
    during an export would leave a file that disagrees with its codebook."""
    rows = load(store, judged)
    e = Export(store, state(), ExportRequest("2023", "csv", status="all"))
    with store._lock:
        store._execute(
            f"ALTER TABLE submissions DELETE WHERE submission_id = '{rows['g2'].submission_id}'"
        )
    deadline = time.monotonic() + 30
    while store.sheet_counts("2023", RegionFilter(), "all", e.cut) and sum(
        store.sheet_counts("2023", RegionFilter(), "all", e.cut).values()
    ) == 20 and time.monotonic() < deadline:
        time.sleep(0.2)
    with pytest.raises(StoreChanged):
        e.write(tmp_path / "x.csv")
