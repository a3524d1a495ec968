"""The export's columns as SQL over the row source (storage.sheets.Projection): the engine pulls
each answer out of answers_json, names units and provinces, formats receive times and, for csv,
writes each record's text, so no row passes through Python on the common path.

Two renderings of one column plan (exports.columns.plan):
- `typed` (parquet, xlsx, sav): a column per export column; strings, Int64 scale points, Int8 0/1,
  received_at as epoch seconds;
- `csv`: each record as pyarrow's CSV writer writes it (strings quoted with quotes doubled, an
  empty answer as nothing, numbers bare), one String per sheet ending in a newline.

Answers are found with visitParamExtractRaw (ClickHouse 18.16 has no JSONExtract; chDB has both),
which takes the first `"id":` anywhere in the document. answers_json is written by json.dumps
(core/judge.py), so outside a nested object an `"id":` is a top-level key unless some key holds
an escaped quote; and a number of 19 digits or more may overflow Int64 where Python says "not
an integer". A sheet whose document has a `{` past its start, an escaped quote, or such a number
is `odd`: its document is sent along and its answer columns are computed again in Python
(exports.shape), the definition the SQL follows. Few sheets are: a nested object is never a
valid answer, and quotes and braces are rare in free text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Final

from core.registry import CampaignState
from exports.columns import Column, questions_of
from storage.sheets import Projection
from storage.sql import literal

ODD: Final = r'.\{|\\"|[0-9]{19}'
# One JSON string as json.dumps writes it; a list of them as json.dumps writes it.
STRING: Final = r'"(?:[^"\\]|\\.)*"'
STRINGS: Final = r"^\[" + STRING + "(?:, " + STRING + r")*\]$"
# Extra columns of both renderings, after the plan's (csv: after its own).
ODD_COLUMNS: Final = ("_odd", "_odd_answers")


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

    # -- shared per-row helpers ------------------------------------------------------------

    def helpers(self) -> list[tuple[str, str]]:
        odd = "toUInt8(1)" if self.all_odd else f"match(answers_json, {literal(ODD)})"
        out = [("_odd", odd)]
        multi = {c.question for c in self.columns if c.kind == "multi"}
        for qid, i in self.index.items():
            raw = f"visitParamExtractRaw(answers_json, {literal(qid)})"
            # json.dumps puts one space after the colon; the value starts after it.
            out.append((f"_v{i}", f"if(substring({raw}, 1, 1) = ' ', substring({raw}, 2), {raw})"))
            if qid in multi:
                out.append((f"_ok{i}", f"match(_v{i}, {literal(STRINGS)})"))
                out.append((f"_t{i}", f"extractAll(_v{i}, {literal(STRING)})"))
        out.append(("_local", f"toString(toDateTime(received_at), {literal(self.tz)})"))
        out.append(("_off", "toInt32(toDateTime(_local, 'UTC')) - toInt32(received_at)"))
        return out

    def _value(self, c: Column) -> str:
        """A column's typed value."""
        if c.kind == "fixed":
            return {
                "status": "standing",
                "reasons": "arrayStringConcat(reasons, ';')",
                "unit_name": _names("unit", self.unit_names),
                "province_name": _names("province", self.province_names),
                "duration_seconds": "toFloat64(duration_seconds)",
            }.get(c.name, c.name)
        v = f"_v{self.index[c.question]}"
        if c.kind == "scale":
            return f"toInt64OrNull({v})"
        if c.kind == "multi":
            i = self.index[c.question]
            option = json.dumps(c.option, ensure_ascii=False)  # as the document spells it
            return f"if(_ok{i}, toInt8(has(_t{i}, {literal(option)})), NULL)"
        # single, attention, text: a string's value; JSON text for anything else (only a
        # rejected sheet has that: judging refuses it).
        text = f"visitParamExtractString(concat('{{\"v\":', {v}, '}}'), 'v')"
        return f"multiIf({v} IN ('', 'null'), NULL, substring({v}, 1, 1) = '\"', {text}, {v})"

    # -- the two renderings ----------------------------------------------------------------

    def typed(self) -> Projection:
        # received_at stays epoch seconds: Arrow makes it a time (exports.shape).
        columns = [(c.name, self._value(c)) for c in self.columns]
        return Projection(tuple(self.helpers()), tuple(columns + self._odd_columns()))

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
            ("status", "standing"),
        ]
        return Projection(tuple(helpers), tuple(columns + self._odd_columns()))

    def _field(self, c: Column) -> str:
        """A column's CSV field."""
        if c.name == "received_at":
            return "concat('\"', _iso, '\"')"
        if c.kind == "fixed" and c.type == "number":
            return f"toString({self._value(c)})"
        if c.kind in ("scale", "multi"):
            return f"ifNull(toString({self._value(c)}), '')"
        return f"ifNull({_quoted(self._value(c))}, '')"

    @staticmethod
    def _odd_columns() -> list[tuple[str, str]]:
        return [("_odd", "_odd"), ("_odd_answers", "if(_odd, answers_json, '')")]


def _names(column: str, names: dict[str, str]) -> str:
    if not names:
        return "''"
    return f"transform({column}, {literal(list(names))}, {literal(list(names.values()))}, '')"
