"""The engine shapes an export's rows (exports/sql.py) exactly as the Python definition does
(exports/shape.py), on both stores: every answer of every type a stored document can hold, and
every csv record byte for byte as pyarrow's CSV writer writes the same typed rows."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from exports.columns import plan
from exports.run import Export, ExportRequest
from exports.shape import schema
from exports.writers import BOM, CsvWriter
from schemas.events import SubmissionJudged
from storage import SqlStore
from tests.storage.test_storage_export import state

Judged = Callable[..., SubmissionJudged]

# Answers as a sheet may carry them (only judging's refusals hold the odd types), each stored
# the way core/judge.py writes them.
ANSWERS: list[dict[str, Any]] = [
    {"q1": 4, "q2": "b", "q3": ["a", "c"], "q4": "free text", "s1": 3},
    {"q1": 4.0, "q2": 5, "q3": [], "q4": ["x", "y"]},
    {"q1": "4", "q2": None, "q3": ["a", 1], "q4": 3},
    {"q1": True, "q2": [], "q3": "a", "q4": "第一行\n第二行\t\u0001 and a\\b"},
    {"q1": None, "q2": "", "q3": None, "q4": "逗号, 分号; 单引号 ' 中文 😀"},
    {"q1": -3, "q2": ["a"], "q3": [["a"]], "q4": False},
    {"q1": 100.0, "q2": 1.5, "q3": ["e"], "q4": None},
    {"q1": [4], "q2": False, "q3": ["a", "a", "d"], "q4": 1e300},
    {"q1": 9223372036854775807, "q2": "c", "q3": [True], "q4": ""},
    {"q1": 2, "zz": 1, "q3": ["b", "c", "d"]},
    {},
    # odd (exports/sql.py ODD): parsed in Python on the normal path too
    {"q1": 12345678901234567890, "q2": "a"},
    {"q2": 'say "b"', "q4": '"quoted"'},
    {"q4": {"q1": 5}, "q1": 1},
    {"a": {"q1": 5}, "q1": 1},
    {"q4": "{braces}"},
]
DURATIONS = [538.25, 0.000015, 86399.999999, 12345678.5, 3600.0, 1e-7]


def load(store: SqlStore, judged: Judged) -> None:
    rows = [
        judged(i, answers_json=json.dumps(a, ensure_ascii=False, sort_keys=True),
               duration_seconds=DURATIONS[i % len(DURATIONS)],
               status="rejected" if i % 2 else "accepted",
               reasons=("invalid_answer", "too_fast") if i % 2 else (),
               opinion='意见 "引号", 逗号\n换行' if i % 3 == 0 else "",
               received_at=dt.datetime(2023, 9, 14, 2, 10, tzinfo=dt.UTC)
               + dt.timedelta(hours=7 * i, seconds=i))
        for i, a in enumerate(ANSWERS)
    ]
    rows.append(judged(99, answers_json=""))  # no document at all
    store.insert_judged(rows)


def as_of_now(store: SqlStore) -> dt.datetime:
    """The as-of an export taken now would have: given to each export of a test that reads the
    same rows, one wait for the store's clock to leave the current second instead of one each."""
    return Export(store, state(), ExportRequest("2023", "csv", status="all")).as_of


def write(store: SqlStore, fmt: str, path: Path, *, all_odd: bool,
          as_of: dt.datetime | None = None) -> Path:
    Export(store, state(), ExportRequest("2023", fmt, status="all", as_of=as_of),
           all_odd=all_odd, block_rows=5).write(path)
    return path


def parquet_rows(path: Path) -> pa.Table:
    return pq.read_table(path).sort_by("submission_id")


def csv_rows(data: bytes) -> pa.Table:
    """Every field as text; an unquoted empty field is null, a quoted one ''."""
    assert data.startswith(BOM)
    names = [c.name for c in plan(state())]
    table = pa_csv.read_csv(
        io.BytesIO(data[len(BOM):]),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=True,
            quoted_strings_can_be_null=False),
    )
    assert table.column_names == names
    return table.sort_by("submission_id")


def test_the_engine_shapes_every_answer_as_python_does(
    store: SqlStore, judged: Judged, tmp_path: Path
) -> None:
    """Breaks if an expression of exports/sql.py reads an answer otherwise than exports/shape.py
    (the reference: every sheet parsed in Python), e.g. a float taken for a scale point, a
    list with a number taken for a multi-choice answer, or an escape left in a text."""
    load(store, judged)
    as_of = as_of_now(store)
    engine = parquet_rows(write(store, "parquet", tmp_path / "e.parquet", all_odd=False,
                                as_of=as_of))
    python = parquet_rows(write(store, "parquet", tmp_path / "p.parquet", all_odd=True,
                                as_of=as_of))
    assert engine.num_rows == len(ANSWERS) + 1
    for name in engine.column_names:
        assert engine.column(name).to_pylist() == python.column(name).to_pylist(), name
    by_id = {r["submission_id"]: r for r in engine.to_pylist()}
    first = by_id["00000000-0000-4000-8000-000000000000"]
    assert (first["q1"], first["q2"], first["q3_a"], first["q3_b"]) == (4, "b", 1, 0)
    text = by_id["00000000-0000-4000-8000-000000000003"]["q4"]
    assert text == "第一行\n第二行\t\u0001 and a\\b"
    assert by_id["00000000-0000-4000-8000-000000000001"]["q2"] == "5"  # JSON text of a number
    assert by_id["00000000-0000-4000-8000-000000000002"]["q3_a"] is None  # ["a", 1]: no answer


def test_csv_records_are_what_pyarrows_writer_writes(
    store: SqlStore, judged: Judged, tmp_path: Path
) -> None:
    """Breaks if the engine's csv text differs from pyarrow's CSV writer on the same rows: a
    quote not doubled, an empty answer quoted, a number or a receive time written otherwise."""
    load(store, judged)
    as_of = as_of_now(store)
    columns = plan(state())
    typed = pq.read_table(write(store, "parquet", tmp_path / "t.parquet", all_odd=True,
                                as_of=as_of))
    typed = typed.cast(schema(columns, "Asia/Shanghai"))  # parquet keeps times in ms
    reference = io.BytesIO()
    writer = CsvWriter(reference, columns, typed.schema)
    for batch in typed.to_batches():
        writer.write(batch)
    writer.finish({})
    expected = reference.getvalue()
    for text in (True, False):  # the engine's text (either store can), or pyarrow's
        store.csv_text = text
        for all_odd in (False, True):
            path = tmp_path / f"{text}-{all_odd}.csv"
            got = write(store, "csv", path, all_odd=all_odd, as_of=as_of).read_bytes()
            assert got.split(b"\n", 1)[0] == expected.split(b"\n", 1)[0]  # the header
            assert len(got) == len(expected)
            assert csv_rows(got).equals(csv_rows(expected)), (text, all_odd)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_an_export_of_nothing_is_a_header_or_an_empty_table(
    store: SqlStore, tmp_path: Path, fmt: str
) -> None:
    path = write(store, fmt, tmp_path / f"none.{fmt}", all_odd=False)
    if fmt == "csv":
        assert csv_rows(path.read_bytes()).num_rows == 0
    else:
        assert parquet_rows(path).num_rows == 0
