"""One writer per format, each over the field's library: csv (UTF-8 with a BOM; records as
pyarrow's CSV writer writes them, by the engine or by pyarrow), xlsx (xlsxwriter in
constant_memory mode, the codebook as a second sheet), sav (pyreadstat: variable labels, value
labels, multi-choice 0/1 variables) and parquet (pyarrow, typed columns, a row group per block).

csv, xlsx and parquet hold one block at a time. sav cannot: ReadStat needs the row count and
each string variable's width before the first row, and pyreadstat takes a whole data frame, so
the blocks are kept (as Arrow, compact) until the end; see benchmarks/analysis.md for its memory.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import zoneinfo
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from exports.columns import Column
from exports.formats import XLSX_MAX_ROWS
from exports.shape import csv_header

BOM: Final = "\ufeff".encode()
TEXT_SLICE: Final = 256 * 1024


def iso_text(values: pa.Array) -> pa.Array:
    """A zoned timestamp column (seconds) as ISO 8601 text with the offset, e.g.
    2023-09-14T10:10:00+08:00.

    Arrow's strftime costs ~10 µs a value; a cast to text is ~0.3 µs. So: the offset of each
    row's hour from the zone (a few distinct hours per block; zones change offset on whole
    hours), local time = UTC + offset as a naive timestamp, cast to text, then the offset."""
    tz = zoneinfo.ZoneInfo(values.type.tz or "UTC")
    seconds = pc.cast(values, pa.int64()).to_numpy(zero_copy_only=False)
    hours, which = np.unique(seconds // 3600, return_inverse=True)
    offsets = np.array([
        int(dt.datetime.fromtimestamp(int(h) * 3600, tz).utcoffset().total_seconds())  # type: ignore[union-attr]
        for h in hours
    ], dtype=np.int64)
    local = pa.array(seconds + offsets[which], type=pa.int64()).cast(pa.timestamp("s"))
    text = pc.replace_substring(pc.cast(local, pa.string()), " ", "T", max_replacements=1)
    suffixes = [f"{'+' if o >= 0 else '-'}{abs(o) // 3600:02d}:{abs(o) % 3600 // 60:02d}"
                for o in offsets]
    if len(set(suffixes)) <= 1:
        return pc.binary_join_element_wise(text, suffixes[0] if suffixes else "", "")
    return pc.binary_join_element_wise(
        text, pc.take(pa.array(suffixes), pa.array(which)), ""
    )


def as_text_table(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch with its timestamps as ISO text (csv, xlsx, sav)."""
    arrays = [
        iso_text(col) if pa.types.is_timestamp(col.type) else col for col in batch.columns
    ]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


class Writer(ABC):
    def __init__(self, columns: Sequence[Column], schema: pa.Schema) -> None:
        self.columns = list(columns)
        self.schema = schema
        self.rows = 0

    @abstractmethod
    def write(self, batch: pa.RecordBatch) -> None: ...

    @abstractmethod
    def finish(self, codebook: Mapping[str, Any]) -> None:
        """Complete the file (the codebook is for formats that carry it inside)."""

    def abort(self) -> None:  # noqa: B027 - most writers hold nothing to release
        """Release what an unfinished file holds (called instead of finish on failure)."""


class CsvWriter(Writer):
    """The records' text comes written by the engine (`write_text`, exports.sql), as pyarrow's
    CSV writer would write it; `write` takes typed batches through pyarrow's writer itself."""

    def __init__(self, sink: IO[bytes], columns: Sequence[Column], schema: pa.Schema) -> None:
        super().__init__(columns, schema)
        self._sink = sink
        sink.write(BOM)  # so Excel reads the file as UTF-8
        sink.write(csv_header(columns))
        self._text_schema = pa.schema([
            pa.field(f.name, pa.string()) if pa.types.is_timestamp(f.type) else f for f in schema
        ])
        self._writer: pa_csv.CSVWriter | None = None

    def write_text(self, parts: Sequence[pa.Buffer], rows: int) -> None:
        for part in parts:
            # In slices (no copy): a bounded sink (the HTTP pipe) takes a block bit by bit.
            for start in range(0, part.size, TEXT_SLICE):
                self._sink.write(part.slice(start, min(TEXT_SLICE, part.size - start)))
        self.rows += rows

    def write(self, batch: pa.RecordBatch) -> None:
        if self._writer is None:
            self._writer = pa_csv.CSVWriter(self._sink, self._text_schema,
                                            write_options=pa_csv.WriteOptions(include_header=False))
        self._writer.write_batch(as_text_table(batch))
        self.rows += batch.num_rows

    def finish(self, codebook: Mapping[str, Any]) -> None:
        if self._writer is not None:
            self._writer.close()


class ParquetWriter(Writer):
    def __init__(self, sink: IO[bytes], columns: Sequence[Column], schema: pa.Schema) -> None:
        super().__init__(columns, schema)
        self._writer = pq.ParquetWriter(sink, schema, compression="zstd")

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)  # one row group per block
        self.rows += batch.num_rows

    def finish(self, codebook: Mapping[str, Any]) -> None:
        self._writer.close()


class XlsxTooLarge(ValueError):
    pass


class XlsxWriter(Writer):
    def __init__(
        self, path: Path, columns: Sequence[Column], schema: pa.Schema,
        max_rows: int = XLSX_MAX_ROWS,
    ) -> None:
        import xlsxwriter

        super().__init__(columns, schema)
        self.max_rows = max_rows
        # constant_memory: each row goes to a temporary file as it is written. No string is
        # turned into a formula, a number or a link: an opinion starting with "=" stays text.
        self._book = xlsxwriter.Workbook(str(path), {
            "constant_memory": True, "strings_to_formulas": False,
            "strings_to_numbers": False, "strings_to_urls": False,
        })
        self._data = self._book.add_worksheet("data")
        self._codebook = self._book.add_worksheet("codebook")
        bold = self._book.add_format({"bold": True})
        self._data.write_row(0, 0, [c.name for c in columns], bold)
        self._data.freeze_panes(1, 0)

    def write(self, batch: pa.RecordBatch) -> None:
        if self.rows + batch.num_rows > self.max_rows:
            raise XlsxTooLarge(
                f"more than {self.max_rows:,} rows do not fit an Excel sheet: "
                "export as csv or parquet"
            )
        columns = as_text_table(batch).to_pydict()
        names = list(columns)
        row = self.rows + 1
        for values in zip(*(columns[n] for n in names), strict=True):
            self._data.write_row(row, 0, values)
            row += 1
        self.rows += batch.num_rows

    def finish(self, codebook: Mapping[str, Any]) -> None:
        sheet = self._codebook
        sheet.write_row(0, 0, ["column", "label", "type", "values", "note"])
        r = 1
        for v in codebook["variables"]:
            values = v.get("values")
            if isinstance(values, dict):
                text = "; ".join(f"{k} = {lbl}" for k, lbl in values.items())
            else:
                text = "; ".join(str(x) for x in values or ())
            sheet.write_row(r, 0, [v["name"], v["label"], v["type"], text, v.get("note", "")])
            r += 1
        r += 1
        for key in ("campaign", "as_of", "rules_versions", "status", "filters", "rows", "format"):
            value = codebook.get(key)
            if isinstance(value, list):
                value = ", ".join(map(str, value))
            elif isinstance(value, dict):
                value = ", ".join(f"{k}={x}" for k, x in value.items()) or "(none)"
            sheet.write_row(r, 0, [key, str(value)])
            r += 1
        self._book.close()

    def abort(self) -> None:
        # The caller removes the partial file; nothing in it is worth saving.
        with contextlib.suppress(Exception):
            self._book.close()


_SPSS_NAME_BAD = re.compile(r"[^\w.@#$]", re.UNICODE)


def spss_names(names: Sequence[str]) -> dict[str, str]:
    """Column name -> a valid, unique SPSS variable name (letters, digits, _ . @ # $; starting
    with a letter; at most 64 bytes; not ending in '.')."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        base = _SPSS_NAME_BAD.sub("_", name).rstrip(".") or "v"
        if not base[0].isalpha():
            base = "v" + base
        while len(base.encode()) > 64:
            base = base[:-1]
        candidate, i = base, 1
        while candidate.lower() in taken:
            i += 1
            suffix = f"_{i}"
            candidate = base[: 64 - len(suffix)] + suffix
        taken.add(candidate.lower())
        out[name] = candidate
    return out


class SavWriter(Writer):
    def __init__(self, path: Path, columns: Sequence[Column], schema: pa.Schema) -> None:
        super().__init__(columns, schema)
        self.path = path
        self._batches: list[pa.RecordBatch] = []
        self.names = spss_names([c.name for c in columns])

    def write(self, batch: pa.RecordBatch) -> None:
        self._batches.append(as_text_table(batch))
        self.rows += batch.num_rows

    def finish(self, codebook: Mapping[str, Any]) -> None:
        import pandas as pd
        import pyreadstat

        table = pa.Table.from_batches(self._batches, schema=self._batches[0].schema) if (
            self._batches) else pa.table({f.name: pa.array([], type=pa.string()
                                                            if pa.types.is_timestamp(f.type)
                                                            else f.type) for f in self.schema})
        self._batches = []
        data: dict[str, Any] = {}
        labels: dict[str, str | None] = {}
        value_labels: dict[str, dict[float | int, str]] = {}
        for c in self.columns:
            name = self.names[c.name]
            col = table.column(c.name)
            labels[name] = c.label[:255]
            if c.kind in ("single", "attention"):
                codes = pc.add(pc.index_in(col, value_set=pa.array(list(c.values))), 1)
                data[name] = pc.cast(codes, pa.float64()).to_numpy(zero_copy_only=False)
                value_labels[name] = {float(i + 1): v for i, v in enumerate(c.values)}
            elif c.kind == "multi":
                data[name] = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
                value_labels[name] = {0.0: "not chosen", 1.0: "chosen"}
            elif c.type in ("integer", "number", "binary"):
                data[name] = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
            else:
                # Arrow-backed strings (pandas 3): compact, where Python str objects are ~60 B each.
                data[name] = pc.fill_null(col, "").to_pandas(types_mapper=pd.ArrowDtype)
        del table
        frame = pd.DataFrame(data)
        pyreadstat.write_sav(
            frame, str(self.path), file_label=f"survey-ingest export {codebook['campaign']}",
            column_labels=labels, variable_value_labels=value_labels,
            note=f"as of {codebook['as_of']}; status {codebook['status']}",
        )
