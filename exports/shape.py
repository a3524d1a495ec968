"""Turns the engine's projection (exports.sql) into what a writer takes: for csv the records'
text, for the other formats a batch of the export's typed columns (exports.columns.plan).

The engine does the per-row work. What is left here is column-wise (receive time as an Arrow
timestamp) and the `odd` sheets (see exports.sql), whose answers are parsed in Python: this is
the definition the SQL follows. A value of the wrong type (only a rejected sheet can hold one:
judging refuses them, and keeps them) is empty in a numeric or 0/1 column and its JSON text in a
text one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.registry import CampaignState
from exports.columns import Column
from exports.sql import Renderer
from storage.sheets import Projection

_INT64: Final = (-(2**63), 2**63 - 1)


def arrow_type(column: Column, tz: str) -> pa.DataType:
    if column.type == "datetime":
        return pa.timestamp("s", tz=tz)
    if column.type == "integer":
        return pa.int64()
    if column.type == "number":
        return pa.float64()
    if column.type == "binary":
        return pa.int8()
    return pa.string()


def schema(columns: Sequence[Column], tz: str) -> pa.Schema:
    return pa.schema([pa.field(c.name, arrow_type(c, tz)) for c in columns])


def csv_header(columns: Sequence[Column]) -> bytes:
    """The header line as pyarrow's CSV writer writes it."""
    return (",".join('"' + c.name.replace('"', '""') + '"' for c in columns) + "\n").encode()


class Shaper:
    """Shapes the projection's batches of one campaign, one column plan and one format."""

    def __init__(self, state: CampaignState, columns: Sequence[Column], *, csv: bool,
                 all_odd: bool = False) -> None:
        self.columns = list(columns)
        self.csv = csv
        self.tz = state.definition.timezone
        self.schema = schema(self.columns, self.tz)
        renderer = Renderer(state, self.columns, all_odd=all_odd)
        self.projection: Projection = renderer.csv() if csv else renderer.typed()
        self.answer_columns = [c for c in self.columns if c.kind != "fixed"]
        # One parse type per question with an answer column.
        answer_types: dict[str, pa.DataType] = {}
        for c in self.answer_columns:
            if c.kind == "multi":
                answer_types[c.question] = pa.list_(pa.string())
            elif c.kind == "scale":
                answer_types[c.question] = pa.int64()
            else:
                answer_types[c.question] = pa.string()
        self.answer_schema = pa.schema(list(answer_types.items()))

    def typed(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The export's columns from a batch of the typed projection."""
        out: list[pa.Array] = []
        for i, field in enumerate(self.schema):
            col = batch.column(i)
            if field.name == "received_at":
                col = pc.cast(col, pa.int64()).cast(field.type)
            elif col.type != field.type:
                col = pc.cast(col, field.type)
            out.append(col)
        odd = self._odd(batch)
        if odd is not None:
            mask, answers = odd
            names = self.schema.names
            for c in self.answer_columns:
                i = names.index(c.name)
                out[i] = pc.replace_with_mask(out[i], mask, answers[c.name])
        return pa.RecordBatch.from_arrays(out, schema=self.schema)

    def text(self, batch: pa.RecordBatch) -> list[pa.Buffer]:
        """The CSV records of a batch of the csv projection, as buffers to write in order."""
        lines = batch.column("_line")
        odd = self._odd(batch)
        if odd is None:
            return [_data(lines)]
        mask, answers = odd
        parts: list[Any] = [pc.filter(batch.column("_odd_head"), mask)]
        for c in self.answer_columns:
            parts += [csv_field(answers[c.name]), ","]
        parts.append(pc.filter(batch.column("_odd_tail"), mask))
        redone = pc.binary_join_element_wise(*parts, "")
        return [_data(pc.filter(lines, pc.invert(mask))), _data(redone)]

    def _odd(self, batch: pa.RecordBatch) -> tuple[pa.Array, dict[str, pa.Array]] | None:
        """(mask of the odd rows, their answer columns parsed in Python), or None."""
        mask = pc.cast(batch.column("_odd"), pa.bool_())
        if not self.answer_columns or not pc.any(mask).as_py():
            return None
        docs = pc.filter(batch.column("_odd_answers"), mask).to_pylist()
        parsed = self._answers_slowly(docs)
        n = len(docs)
        answers: dict[str, pa.Array] = {}
        for c in self.answer_columns:
            value = parsed.field(c.question)
            answers[c.name] = _chosen(value, c.option, n) if c.kind == "multi" else value
        return mask, answers

    def _answers_slowly(self, docs: Sequence[str | None]) -> pa.StructArray:
        """One struct per document, a field per question: a value of the wrong type is kept as
        JSON text in a text field and left empty in a numeric or multi-choice one."""
        columns: dict[str, list[Any]] = {name: [] for name in self.answer_schema.names}
        for doc in docs:
            try:
                values = json.loads(doc or "{}")
            except ValueError:
                values = {}
            if not isinstance(values, dict):
                values = {}
            for f in self.answer_schema:
                columns[f.name].append(_coerce(values.get(f.name), f.type))
        return pa.StructArray.from_arrays(
            [pa.array(columns[f.name], type=f.type) for f in self.answer_schema],
            fields=list(self.answer_schema),
        )


def csv_field(values: pa.Array) -> pa.Array:
    """CSV fields as pyarrow's writer (and exports.sql) writes them: a string quoted with its
    quotes doubled, a number bare, an empty value as nothing."""
    if pa.types.is_string(values.type):
        quoted = pc.binary_join_element_wise(
            '"', pc.replace_substring(values, '"', '""'), '"', "")
        return pc.fill_null(quoted, "")
    return pc.fill_null(pc.cast(values, pa.string()), "")


def _data(lines: pa.Array) -> pa.Buffer:
    """The bytes of a string array's values, back to back (no copy)."""
    if not len(lines):
        return pa.py_buffer(b"")
    width = np.int64 if pa.types.is_large_string(lines.type) else np.int32
    _, offsets_buffer, data = lines.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=width)
    start, end = int(offsets[lines.offset]), int(offsets[lines.offset + len(lines)])
    return data[start:end] if data is not None and end > start else pa.py_buffer(b"")


def _coerce(value: Any, kind: pa.DataType) -> Any:
    if value is None:
        return None
    if pa.types.is_integer(kind):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return value if ok and _INT64[0] <= value <= _INT64[1] else None
    if pa.types.is_list(kind):
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _chosen(value: pa.Array, option: str, n: int) -> pa.Array:
    """0/1 per sheet: whether `option` is among the chosen; empty (null) when the question was
    not answered (no value, or no option chosen)."""
    lengths = pc.fill_null(pc.list_value_length(value), 0).to_numpy(zero_copy_only=False)
    answered = lengths > 0
    chosen = np.zeros(n, dtype=np.int8)
    flat = pc.list_flatten(value)
    if len(flat):
        parents = pc.list_parent_indices(value).to_numpy(zero_copy_only=False)
        hits = pc.fill_null(pc.equal(flat, option), False).to_numpy(zero_copy_only=False)
        chosen[parents[hits]] = 1
    return pa.array(chosen, type=pa.int8(), mask=~answered)
