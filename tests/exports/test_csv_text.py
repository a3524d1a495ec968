"""The csv writer's side of engine-written records: the header as pyarrow writes it, and a
block's text handed to the sink in bounded slices."""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv

from exports.columns import FIXED
from exports.shape import csv_header, schema
from exports.writers import BOM, TEXT_SLICE, CsvWriter


class Recording(io.BytesIO):
    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def write(self, data: Any) -> int:
        n = super().write(data)
        self.sizes.append(n)
        return n


def test_the_header_is_pyarrows() -> None:
    columns = list(FIXED)
    out = io.BytesIO()
    pa_csv.write_csv(pa.table({c.name: pa.array([], pa.string()) for c in columns}), out)
    assert csv_header(columns) == out.getvalue()


def test_a_blocks_text_reaches_the_sink_in_bounded_slices() -> None:
    """Breaks if a block's text is written in one piece: the HTTP pipe's bound would not hold."""
    sink = Recording()
    writer = CsvWriter(sink, list(FIXED), schema(list(FIXED), "Asia/Shanghai"))
    text = b"x" * (2 * TEXT_SLICE + 123)
    writer.write_text([pa.py_buffer(text), pa.py_buffer(b"")], rows=7)
    header = len(BOM) + len(csv_header(list(FIXED)))
    assert sink.getvalue()[header:] == text and writer.rows == 7
    assert max(sink.sizes) <= TEXT_SLICE
