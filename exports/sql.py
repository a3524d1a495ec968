"""The export's columns as SQL over the row source (storage.sheets.Projection): the engine pulls
each answer out of answers_json, names units and provinces, formats receive times and, for csv,
writes each record's text, so no row passes through Python on the common path.

Two renderings of one column plan (exports.columns.plan):
- `typed` (parquet, xlsx, sav): a column per export column; strings, Int64 scale points, Int8 0/1,
  received_at as epoch seconds;
- `csv`: each record as pyarrow's CSV writer writes it (strings quoted with quotes doubled, an
  empty answer as nothing, numbers bare), one String per sheet ending in a newline.

Answers are read with visitParam* (ClickHouse 18.16 has no JSONExtract; chDB has both), which
take the first `"id":` anywhere in the document (the value starts after the one space json.dumps
puts after a colon). answers_json is json.dumps(sort_keys=True, ensure_ascii=False)
(core/judge.py). In such a document with no escaped quote, every `"` bounds a string: an `"id":`
outside a nested object is a top-level key, and a quoted option is found in a list only as one of
its elements. A sheet whose document has an escaped quote, a nested object, another layout
(no space after the first colon), or a scale answer too long for Int64 to read as Python does, is
`odd`: its document is sent along and its answer columns are computed again in Python
(exports.shape), the definition this SQL follows. Few sheets are: a nested object or an overlong
number is never a valid answer, and ASCII double quotes are rare in free text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Final

from core.registry import CampaignState
from exports.columns import Column, questions_of
from storage.sheets import Projection
from storage.sql import literal

# A JSON string as json.dumps writes it; a non-empty list of them as json.dumps writes it.
STRING: Final = r'"(?:[^"\\]|\\.)*"'
STRINGS: Final = r"^\[" + STRING + "(?:, " + STRING + r")*\]$"
NESTED: Final = ("': {'", "'[{'", "', {'")  # where an object starts inside another


def _quoted(expr: str) -> str:
    """A CSV field of a string, as pyarrow writes one: always quoted, quotes doubled."""
    return f"concat('\"', replaceAll({expr}, '\"', '\"\"'), '\"')"


class Renderer:
    """The SQL of one campaign's column plan."""

    def __init__(self, state: CampaignState, columns: Sequence[Column], *,
                 all_odd: bool = False) -> None:
        self.columns = list(columns)
        self.all_odd = all_odd  # every sheet through Python: the reference, for tests
        self.tz = state.definition.timezone
        self.unit_names = {u.id: u.name for u in state.units.values()}
        self.province_names = {p.id: p.name for p in state.provinces.values()}
        asked = {c.question for c in self.columns if c.kind != "fixed"}
        self.index = {q.id: i for i, q in enumerate(questions_of(state)) if q.id in asked}
        self.kinds = {c.question: c.kind for c in self.columns if c.kind != "fixed"}

    # -- shared per-row helpers ------------------------------------------------------------

    def helpers(self) -> list[tuple[str, str]]:
        odd = ["position(answers_json, '\\\\\"') > 0",
               # json.dumps writes every key the same way: the first says how
               "position(answers_json, '\":') != position(answers_json, '\": ')",
               *(f"position(answers_json, {n}) > 0" for n in NESTED)]
        out = []
        for qid, i in self.index.items():
            # the value, after the space json.dumps puts after the colon
            raw = f"visitParamExtractRaw(answers_json, {literal(qid)})"
            out.append((f"_v{i}", f"substring({raw}, 2)"))
            if self.kinds[qid] == "multi":
                out.append((f"_ok{i}", f"match(_v{i}, {literal(STRINGS)})"))
            if self.kinds[qid] == "scale":
                # 19 characters and more may overflow Int64 where Python says "too large"
                odd.append(f"length(_v{i}) > 18")
        out.append(("_odd", "toUInt8(1)" if self.all_odd else f"toUInt8({' OR '.join(odd)})"))
        out.append(("_local", f"toString(toDateTime(received_at), {literal(self.tz)})"))
        out.append(("_off", "toInt32(toDateTime(_local, 'UTC')) - toInt32(received_at)"))
        return out

    def _fixed(self, c: Column) -> str:
        return {
            "status": "status",
            "reasons": "arrayStringConcat(reasons, ';')",
            "unit_name": _names("unit", self.unit_names),
            "province_name": _names("province", self.province_names),
            "duration_seconds": "toFloat64(duration_seconds)",
        }.get(c.name, c.name)

    def _text(self, c: Column) -> tuple[str, str]:
        """(whether the answer is empty, its text) of a single, attention or text question: a
        string's value, the JSON text of anything else (only a rejected sheet has that)."""
        i = self.index[c.question]
        blank = f"_v{i} IN ('', 'null')"
        # A string without a backslash is its value; else visitParamExtractString reads it,
        # in a document of its own (it wants no space after the colon).
        unescaped = f"visitParamExtractString(concat('{{\"v\":', _v{i}, '}}'), 'v')"
        string = (f"if(position(_v{i}, '\\\\') > 0, {unescaped},"
                  f" substring(_v{i}, 2, length(_v{i}) - 2))")
        text = f"if(substring(_v{i}, 1, 1) = '\"', {string}, _v{i})"
        return blank, text

    def _chosen(self, c: Column) -> str:
        option = literal(json.dumps(c.option, ensure_ascii=False))  # as the document has it
        v = f"_v{self.index[c.question]}"
        if c.option == ", ":  # the one text found between two elements too
            return f"has(extractAll({v}, {literal(STRING)}), {option})"
        return f"position({v}, {option}) > 0"

    # -- the two renderings ----------------------------------------------------------------

    def typed(self) -> Projection:
        # received_at stays epoch seconds: Arrow makes it a time (exports.shape).
        columns = [(c.name, self._value(c)) for c in self.columns]
        return Projection(tuple(self.helpers()), tuple(columns + self._odd_columns()))

    def _value(self, c: Column) -> str:
        if c.kind == "fixed":
            return self._fixed(c)
        i = self.index[c.question]
        if c.kind == "scale":
            return f"toInt64OrNull(_v{i})"
        if c.kind == "multi":
            return f"if(_ok{i}, toInt8({self._chosen(c)}), NULL)"
        blank, text = self._text(c)
        return f"if({blank}, NULL, {text})"

    def csv(self) -> Projection:
        *fixed, opinion = [c for c in self.columns if c.kind == "fixed"]
        answers = [c for c in self.columns if c.kind != "fixed"]
        head = ", ',', ".join(self._field(c) for c in fixed)
        helpers = [
            *self.helpers(),
            ("_iso", "concat(replaceOne(_local, ' ', 'T'), if(_off < 0, '-', '+'),"
                     " substring(toString(100 + intDiv(abs(_off), 3600)), 2), ':',"
                     " substring(toString(100 + intDiv(abs(_off) % 3600, 60)), 2))"),
            ("_head", f"concat({head}, ',')"),
            ("_tail", f"concat({self._field(opinion)}, '\\n')"),
        ]
        body = "".join(f"{self._field(c)}, ',', " for c in answers)
        columns = [
            ("_line", f"concat(_head, {body}_tail)"),
            ("_odd_head", "if(_odd, _head, '')"),
            ("_odd_tail", "if(_odd, _tail, '')"),
            ("unit", "unit"),
            ("status", "status"),
        ]
        return Projection(tuple(helpers), tuple(columns + self._odd_columns()))

    def _field(self, c: Column) -> str:
        """A column's CSV field."""
        if c.name == "received_at":
            return "concat('\"', _iso, '\"')"
        if c.kind == "fixed":
            value = self._fixed(c)
            return f"toString({value})" if c.type == "number" else _quoted(value)
        i = self.index[c.question]
        if c.kind == "scale":
            # A JSON integer of at most 18 characters reads back as itself.
            return f"if(isNull(toInt64OrNull(_v{i})), '', _v{i})"
        if c.kind == "multi":
            return f"if(_ok{i}, if({self._chosen(c)}, '1', '0'), '')"
        blank, text = self._text(c)
        return f"if({blank}, '', {_quoted(text)})"

    @staticmethod
    def _odd_columns() -> list[tuple[str, str]]:
        return [("_odd", "_odd"), ("_odd_answers", "if(_odd, answers_json, '')")]


def _names(column: str, names: dict[str, str]) -> str:
    if not names:
        return "''"
    return f"transform({column}, {literal(list(names))}, {literal(list(names.values()))}, '')"
