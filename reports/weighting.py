"""The report's weights: raking of the weighting cells to the provinces' internet users and the
campaign's declared margins (CONTRACT §10), with svy.

A cell is the respondent's own province crossed with each margin's value. Raking gives every
sheet of a cell the same weight, so the cell table (a few thousand rows at most, summed by the
database) is raked with the cells' counts as base weights, and a sheet's weight is its cell's
total over its count. svy (the maintained successor of samplics, by the same authors) takes
base weights, which raking an aggregated table needs; weightipy weights one row per sheet from
a unit base, and balance downgrades numpy and pandas here.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from reports.estimates import kish
from schemas.campaign import CampaignDefinition, Margin

OTHER: Final = "（未填写或其他）"  # a margin value the declared shares do not name
OUTSIDE: Final = "（区域外省份）"  # a regional report's respondents from outside its provinces
TOLERANCE: Final = 1e-7

CellKey = tuple[str, ...]  # (respondent province, one value per margin)


@dataclass(frozen=True)
class MarginFit:
    key: str  # respondent.age_group | question.q9
    rows: list[tuple[str, float, float, float]]  # (category, target, weighted, unweighted)


@dataclass
class Weights:
    """A weight per cell (per sheet in it), with what the method page states about them."""

    by_cell: dict[CellKey, float]
    counts: dict[CellKey, int]
    provinces_used: list[tuple[str, str, int, int]] = field(default_factory=list)
    provinces_left_out: list[tuple[str, str]] = field(default_factory=list)
    unweighted_sheets: int = 0  # respondent province unknown to the campaign: weight 0
    margins: list[MarginFit] = field(default_factory=list)
    deff: float = 1.0
    n_eff: float = 0.0
    scope_provinces: frozenset[str] | None = None  # a regional report's own provinces
    outside_sheets: int = 0  # respondents from other provinces, kept at their sample share

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    def of(self, key: CellKey) -> float:
        return self.by_cell.get(key, 0.0)

    def key(self, margins: Sequence[Margin], raw: Sequence[Any]) -> CellKey:
        """The cell a sheet's raw cell columns (as the database returns them) fall in."""
        return mapped_key(margins, raw, self.scope_provinces)


def margin_value(margin: Margin, raw: str) -> str:
    """A cell's value of a margin: the text of a respondent field, or the option a question's
    raw JSON answer names; OTHER for what the declared shares do not name."""
    value = raw
    if margin.question is not None:
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        value = parsed if isinstance(parsed, str) else ""
    return value if value in margin.shares else OTHER


def compute_weights(definition: CampaignDefinition, cells: Mapping[CellKey, int],
                    scope_provinces: frozenset[str] | None = None) -> Weights:
    """Rake the cells (sheet counts keyed by (province, margin raw values...)) to the provinces'
    internet users and the declared margins. Provinces with no sheet in the cells are left out
    and the province shares renormalised over those present; a declared category with no sheet
    likewise; sheets whose margin value is missing keep their sample share of that margin.

    A regional report (`scope_provinces`: its provinces) describes its own provinces' users:
    respondents from elsewhere (answering through the region's links) are pooled into one cell
    kept at its sample share, rather than each standing for a whole other province."""
    provinces = {p.id: p for p in definition.provinces}
    margins = definition.margins
    counts: dict[CellKey, int] = {}
    unweighted = 0
    for key, n in cells.items():
        if n <= 0:
            continue
        mapped = mapped_key(margins, key, scope_provinces)
        if mapped[0] != OUTSIDE and (key[0] not in provinces
                                     or provinces[key[0]].internet_users <= 0):
            unweighted += n
            continue
        counts[mapped] = counts.get(mapped, 0) + n
    total = sum(counts.values())
    present = sorted({k[0] for k in counts} - {OUTSIDE})
    outside = sum(n for k, n in counts.items() if k[0] == OUTSIDE)
    out = Weights(by_cell={}, counts=counts, unweighted_sheets=unweighted,
                  scope_provinces=scope_provinces, outside_sheets=outside)
    out.provinces_left_out = [(p.id, p.name) for p in definition.provinces
                              if p.id not in present
                              and (scope_provinces is None or p.id in scope_provinces)]
    if total == 0:
        return out
    users = sum(provinces[p].internet_users for p in present)
    inside = total - outside
    controls: dict[str, dict[str, float]] = {
        "province": {p: provinces[p].internet_users / users * inside for p in present}
    }
    if outside:
        controls["province"][OUTSIDE] = float(outside)
    for i, m in enumerate(margins, start=1):
        seen: dict[str, int] = {}
        for key, n in counts.items():
            seen[key[i]] = seen.get(key[i], 0) + n
        other = seen.get(OTHER, 0) / total
        declared = {c: s for c, s in m.shares.items() if seen.get(c, 0) > 0}
        mass = sum(declared.values())
        control = {c: s / mass * (1 - other) * total for c, s in declared.items()} if mass else {}
        if other:
            control[OTHER] = other * total
        controls[m.key] = control
    keys = list(counts)
    raked = _rake(keys, [counts[k] for k in keys], controls)
    out.by_cell = {k: raked[i] / counts[k] for i, k in enumerate(keys)}
    out.deff, out.n_eff = kish([out.by_cell[k] for k in keys], [counts[k] for k in keys])
    for p in present:
        n = sum(c for k, c in counts.items() if k[0] == p)
        out.provinces_used.append((p, provinces[p].name, provinces[p].internet_users, n))
    for i, m in enumerate(margins, start=1):
        rows = []
        for cat, target in controls[m.key].items():
            got = sum(raked[j] for j, k in enumerate(keys) if k[i] == cat)
            raw = sum(counts[k] for k in keys if k[i] == cat)
            rows.append((cat, target / total, got / total, raw / total))
        out.margins.append(MarginFit(m.key, rows))
    return out


def _rake(keys: Sequence[CellKey], counts: Sequence[int],
          controls: Mapping[str, Mapping[str, float]]) -> list[float]:
    """Cell totals after raking (svy's iterative proportional fitting on the cell table)."""
    names = list(controls)
    active = [n for n in names if len(controls[n]) > 1]
    if not active:
        return [float(c) for c in counts]
    import polars as pl
    import svy

    columns: dict[str, Any] = {f"m{i}": [k[i] for k in keys] for i, n in enumerate(names)
                               if n in active}
    columns["base"] = [float(c) for c in counts]
    frame = pl.DataFrame(columns)
    ctrl: dict[str, Any] = {f"m{i}": dict(controls[n]) for i, n in enumerate(names) if n in active}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sample = svy.Sample(frame, svy.Design(wgt="base"))
        raked = sample.weighting.rake(controls=ctrl, tol=TOLERANCE, max_iter=2000)
    data: Any = raked.data
    return [float(x) for x in data["rk_wgt"].to_list()]


def mapped_key(margins: Sequence[Margin], raw: Sequence[Any],
               scope_provinces: frozenset[str] | None = None) -> CellKey:
    """The cell a sheet's raw cell columns (as the database returns them) fall in."""
    province = str(raw[0])
    if scope_provinces is not None and province not in scope_provinces:
        province = OUTSIDE
    return (province, *(margin_value(m, str(v)) for m, v in zip(margins, raw[1:],
                                                                 strict=True)))


def cell_counts(rows: Sequence[Sequence[Any]]) -> dict[CellKey, int]:
    """cells_sql rows ((cell columns..., count)) as counts keyed by the raw cell values."""
    out: dict[CellKey, int] = {}
    for row in rows:
        key = tuple(str(v) for v in row[:-1])
        out[key] = out.get(key, 0) + int(row[-1])
    return out
