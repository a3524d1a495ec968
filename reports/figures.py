"""A report's weighted figures from cell aggregates: every share, mean and satisfaction index,
weighted and unweighted side by side (the weights come from reports/weighting.py)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from reports import queries
from reports.estimates import CellSums, Estimate, ratio
from reports.model import OptionShare, QuestionResult
from reports.queries import Scope
from reports.stats import proportion
from reports.weighting import CellKey, Weights
from schemas.campaign import (
    CampaignDefinition,
    MultiQuestion,
    Question,
    ScaleQuestion,
    SingleQuestion,
)

Run = Callable[[str], Sequence[Sequence[Any]]]
_MISSING: Final = object()
UNIT: Final = 1.0


def parse(raw: Any) -> Any:
    text = str(raw).strip()
    if not text:
        return _MISSING
    try:
        value = json.loads(text)
    except ValueError:
        return _MISSING
    return _MISSING if value is None else value


@dataclass
class Figures:
    """Weighted figures of one scope. `weights` map a cell to a sheet's weight."""

    run: Run
    definition: CampaignDefinition
    scope: Scope
    weights: Weights

    @property
    def _margins(self) -> Any:
        return self.definition.margins

    def _key(self, raw: Sequence[Any]) -> CellKey:
        return self.weights.key(self._margins, raw)

    def _est(self, cells: Mapping[CellKey, CellSums], *, share: bool = False,
             bounds: tuple[float, float] = (-1e300, 1e300), scale: float = 1.0
             ) -> tuple[Estimate, Estimate]:
        """(weighted, unweighted) estimates of one ratio over the same cells."""
        weighted = ratio(cells, self.weights.by_cell, share=share, bounds=bounds, scale=scale)
        ones = {k: UNIT for k in cells}
        return weighted, ratio(cells, ones, share=share, bounds=bounds, scale=scale)

    # -- questions ----------------------------------------------------------------------------

    def question(self, q: Question) -> QuestionResult | None:
        if not isinstance(q, ScaleQuestion | SingleQuestion | MultiQuestion):
            return None
        m = len(self._margins) + 1
        by_cell: dict[CellKey, dict[Any, int]] = defaultdict(dict)
        skipped = 0
        for row in self.run(queries.answer_cells_sql(self.scope, self._margins, q.id)):
            value, n = parse(row[m]), int(row[m + 1])
            if value is _MISSING or value == []:
                skipped += n
                continue
            key = self._key(row[:m])
            marker = json.dumps(value, ensure_ascii=False, sort_keys=True)
            by_cell[key][marker] = by_cell[key].get(marker, 0) + n
        if isinstance(q, ScaleQuestion):
            return self._scale(q, by_cell, skipped)
        return self._choice(q, by_cell, skipped)

    def _scale(self, q: ScaleQuestion, by_cell: Mapping[CellKey, Mapping[str, int]],
               skipped: int) -> QuestionResult:
        values: dict[CellKey, dict[int, int]] = {}
        for key, markers in by_cell.items():
            for marker, n in markers.items():
                v = json.loads(marker)
                if isinstance(v, int | float) and not isinstance(v, bool):
                    values.setdefault(key, {})
                    values[key][int(v)] = values[key].get(int(v), 0) + n
        answered = sum(sum(c.values()) for c in values.values())
        points = sorted(set(range(q.min, q.max + 1)) | {v for c in values.values() for v in c})
        options = []
        for point in points:
            cells = {k: CellSums.of_indicator(c.get(point, 0), sum(c.values()))
                     for k, c in values.items()}
            weighted, _ = self._est(cells, share=True)
            total = sum(c.get(point, 0) for c in values.values())
            options.append(OptionShare(str(point), proportion(total, answered), weighted))
        sums = {k: CellSums(sum(v * n for v, n in c.items()), sum(c.values()),
                            sum(v * v * n for v, n in c.items()), sum(c.values()),
                            sum(v * n for v, n in c.items()), sum(c.values()))
                for k, c in values.items()}
        weighted_mean, unweighted = self._est(sums, bounds=(q.min, q.max))
        return QuestionResult(
            id=q.id, label=q.label or q.id, type="scale", answered=answered, skipped=skipped,
            options=options, mean=unweighted.value if answered else None,
            weighted_mean=weighted_mean if answered else None,
        )

    def _choice(self, q: SingleQuestion | MultiQuestion,
                by_cell: Mapping[CellKey, Mapping[str, int]], skipped: int) -> QuestionResult:
        answered_by: dict[CellKey, int] = {}
        ticks: dict[str, dict[CellKey, int]] = defaultdict(dict)
        for key, markers in by_cell.items():
            for marker, n in markers.items():
                value = json.loads(marker)
                chosen = {str(v) for v in (value if isinstance(value, list) else [value])
                          if v is not None}
                if not chosen:
                    skipped += n
                    continue
                answered_by[key] = answered_by.get(key, 0) + n
                for option in chosen:
                    ticks[option][key] = ticks[option].get(key, 0) + n
        answered = sum(answered_by.values())
        options = []
        for option in list(q.options) + sorted(set(ticks) - set(q.options)):
            per = ticks.get(option, {})
            cells = {k: CellSums.of_indicator(per.get(k, 0), a) for k, a in answered_by.items()}
            weighted, _ = self._est(cells, share=True)
            options.append(OptionShare(option, proportion(sum(per.values()), answered),
                                       weighted))
        return QuestionResult(id=q.id, label=q.label or q.id, type=q.type, answered=answered,
                              skipped=skipped, options=options)

    # -- satisfaction index -------------------------------------------------------------------

    def index(self, scales: Sequence[Question], by: str | None = None
              ) -> dict[str, tuple[Estimate, Estimate, int]]:
        """{group: (weighted, unweighted, scale-item answers)}; group '' without `by`."""
        if not scales:
            return {}
        m = len(self._margins) + 1
        offset = 1 if by else 0
        groups: dict[str, dict[CellKey, CellSums]] = defaultdict(dict)
        for row in self.run(queries.index_cells_sql(self.scope, self._margins, scales, by)):
            group = str(row[0]) if by else ""
            key = self._key(row[offset:offset + m])
            sy, sx, syy, sxx, sxy, n = (float(v) for v in row[offset + m:offset + m + 6])
            old = groups[group].get(key)
            if old is not None:  # two raw values mapped to one cell (a margin's OTHER)
                sy, sx, syy, sxx, sxy, n = (sy + old.sy, sx + old.sx, syy + old.syy,
                                            sxx + old.sxx, sxy + old.sxy, n + old.n)
            groups[group][key] = CellSums(sy, sx, syy, sxx, sxy, int(n))
        out = {}
        for group, cells in groups.items():
            weighted, unweighted = self._est(cells, bounds=(0.0, 1.0), scale=100.0)
            answers = int(sum(c.sx for c in cells.values()))
            if answers:
                out[group] = (weighted, unweighted, answers)
        return out
