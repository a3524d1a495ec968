"""Turns the row source's batches (storage.sheets.SHEET_COLUMNS) into the export's columns
(exports.columns.plan), column by column in Arrow: no Python work per row on the common path.

Answers are parsed by Arrow's JSON reader against a schema the questionnaire gives (a scale is an
integer, a choice or text a string, a multi-choice a list of strings). A batch holding an answer
of another type (only a rejected sheet can: judging refuses them, and keeps them) is parsed again
in Python, where such a value becomes empty in a numeric column and its JSON text in a text one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from core.registry import CampaignState
from exports.columns import Column

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


class Shaper:
    """Shapes batches of one campaign for one column plan."""

    def __init__(self, state: CampaignState, columns: Sequence[Column]) -> None:
        self.columns = list(columns)
        self.tz = state.definition.timezone
        self.schema = schema(self.columns, self.tz)
        self.unit_names = _lookup({u.id: u.name for u in state.units.values()})
        self.province_names = _lookup({p.id: p.name for p in state.provinces.values()})
        # One parse type per question with an answer column.
        answer_types: dict[str, pa.DataType] = {}
        for c in self.columns:
            if c.kind == "multi":
                answer_types[c.question] = pa.list_(pa.string())
            elif c.kind == "scale":
                answer_types[c.question] = pa.int64()
            elif c.kind != "fixed":
                answer_types[c.question] = pa.string()
        self.answer_schema = pa.schema(list(answer_types.items()))

    def shape(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        n = batch.num_rows
        raw = {name: batch.column(name) for name in batch.schema.names}
        answers = self._answers(raw["answers_json"], n)
        out: list[pa.Array] = []
        for c in self.columns:
            out.append(self._column(c, raw, answers, n))
        return pa.RecordBatch.from_arrays(out, schema=self.schema)

    def _column(
        self, c: Column, raw: Mapping[str, pa.Array], answers: pa.StructArray, n: int
    ) -> pa.Array:
        if c.kind == "fixed":
            if c.name == "received_at":
                return pc.cast(raw["received_at"], pa.int64()).cast(pa.timestamp("s", tz=self.tz))
            if c.name == "reasons":
                return pc.binary_join(pc.cast(raw["reasons"], pa.list_(pa.string())), ";")
            if c.name == "unit_name":
                return self.unit_names(raw["unit"])
            if c.name == "province_name":
                return self.province_names(raw["province"])
            if c.name == "duration_seconds":
                return pc.cast(raw["duration_seconds"], pa.float64())
            return pc.cast(raw[c.name], pa.string())
        value = answers.field(c.question)
        if c.kind == "multi":
            return _chosen(value, c.option, n)
        return value

    def _answers(self, docs: pa.Array, n: int) -> pa.StructArray:
        if not self.answer_schema:
            return _empty(n)
        docs = pc.cast(docs, pa.string())
        # One JSON document per line; a sheet without answers is an empty object, so the
        # reader yields exactly one row per sheet (json.dumps never writes a raw newline).
        docs = pc.if_else(pc.equal(docs, ""), "{}", docs)
        lines = pc.binary_join_element_wise(docs, "", "\n")
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset:]
        data = lines.buffers()[2]
        body = data[int(offsets[0]) : int(offsets[n])] if n else pa.py_buffer(b"")
        try:
            parsed = pa_json.read_json(
                pa.BufferReader(body),
                read_options=pa_json.ReadOptions(use_threads=False, block_size=max(1 << 20,
                                                                                   body.size + 1)),
                parse_options=pa_json.ParseOptions(
                    explicit_schema=self.answer_schema, unexpected_field_behavior="ignore"
                ),
            )
            if parsed.num_rows == n:
                table = parsed.select(self.answer_schema.names).combine_chunks()
                return pa.StructArray.from_arrays(
                    [table.column(i).chunk(0) if table.column(i).num_chunks else
                     pa.nulls(n, table.schema.field(i).type) for i in range(table.num_columns)],
                    fields=list(self.answer_schema),
                )
        except pa.ArrowInvalid:
            pass
        return self._answers_slowly(docs.to_pylist())

    def _answers_slowly(self, docs: Sequence[str | None]) -> pa.StructArray:
        """The same struct, parsed in Python: a value of the wrong type is kept as JSON text in
        a text column and left empty in a numeric or multi-choice one."""
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


def _empty(n: int) -> pa.StructArray:
    return pa.StructArray.from_arrays([pa.nulls(n)], names=["_"])


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


def _lookup(names: Mapping[str, str]) -> Any:
    """ids -> names, column-wise: an id the registry does not know (or '') gets ''."""
    keys = pa.array(list(names), type=pa.string())
    values = pa.array(list(names.values()), type=pa.string())

    def look(ids: pa.Array) -> pa.Array:
        ids = pc.cast(ids, pa.string())
        if not len(keys):
            return pa.array([""] * len(ids), type=pa.string())
        return pc.fill_null(pc.take(values, pc.index_in(ids, value_set=keys)), "")

    return look
