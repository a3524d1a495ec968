"""Weighted estimates from weighting-cell sums: ratio estimators, their linearised variance,
intervals, differences, and Kish's design effect. Pure arithmetic (numpy), no I/O.

Every weighted figure of a report is a ratio R = Σ w·y / Σ w·x over accepted sheets (a share:
y = chosen, x = 1; a mean: y = value, x = answered; the satisfaction index: y = the sheet's
rescaled scale points, x = the scale items it answered). A sheet's weight is its cell's, so the
sums a cell needs are Σy, Σx, Σy², Σx², Σxy and its count: the database sums them and no
sheet-level row ever leaves it.

The variance is the Taylor linearisation for a ratio under with-replacement sampling,
v = Σ_c w_c² Σ_{i∈c} (y_i − R x_i)² / (Σ w x)², which treats the weights as fixed: it ignores
the variance reduction post-stratification brings, so it errs on the wide side.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from reports.stats import Z_95, wilson_share


@dataclass(frozen=True)
class CellSums:
    """Sums over the sheets of one weighting cell: Σy, Σx, Σy², Σx², Σxy and the count."""

    sy: float
    sx: float
    syy: float
    sxx: float
    sxy: float
    n: int

    @staticmethod
    def of_indicator(chosen: int, answered: int) -> CellSums:
        return CellSums(chosen, answered, chosen, answered, chosen, answered)


@dataclass(frozen=True)
class Estimate:
    """A ratio with its 95% interval; `n` sheets it rests on, `n_eff` their effective size."""

    value: float
    low: float
    high: float
    se: float
    n: int
    n_eff: float

    @property
    def defined(self) -> bool:
        return self.n > 0


EMPTY = Estimate(0.0, 0.0, 0.0, 0.0, 0, 0.0)


def _arrays(cells: Mapping[Any, CellSums], weights: Mapping[Any, float]) -> np.ndarray:
    rows = [(weights.get(k, 0.0), c.sy, c.sx, c.syy, c.sxx, c.sxy, c.n) for k, c in cells.items()]
    return np.array(rows, dtype=float).reshape(-1, 7)


def ratio(
    cells: Mapping[Any, CellSums],
    weights: Mapping[Any, float],
    *,
    share: bool = False,
    bounds: tuple[float, float] = (-math.inf, math.inf),
    scale: float = 1.0,
) -> Estimate:
    """R = Σ w·y / Σ w·x with its interval. A share's interval is Wilson's at the effective
    sample size p(1−p)/v (Kish's n_eff where p is 0 or 1), so it stays inside [0, 1] and is not
    degenerate for options nobody or everybody chose; a mean's is R ± z·√v, kept in `bounds`.
    `scale` multiplies the result (100 for an index)."""
    a = _arrays(cells, weights)
    w, sy, sx, syy, sxx, sxy, n = (a[:, i] for i in range(7))
    n_total = int(n.sum())
    den = float((w * sx).sum())
    if den <= 0 or n_total == 0:
        return EMPTY
    r = float((w * sy).sum()) / den
    resid = np.maximum(syy - 2 * r * sxy + r * r * sxx, 0.0)
    v = float((w * w * resid).sum()) / (den * den)
    kish = float((w * n).sum() ** 2 / max((w * w * n).sum(), 1e-300))
    if share:
        r = min(max(r, 0.0), 1.0)
        n_eff = r * (1 - r) / v if 0 < r < 1 and v > 0 else kish
        low, high = wilson_share(r, n_eff)
    else:
        n_eff = kish
        half = Z_95 * math.sqrt(v)
        low, high = max(bounds[0], r - half), min(bounds[1], r + half)
        low, high = min(low, r), max(high, r)
    return Estimate(scale * r, scale * low, scale * high, scale * math.sqrt(v), n_total,
                    min(n_eff, float(n_total)))


@dataclass(frozen=True)
class Difference:
    """a − b with the 95% interval of the difference of two independent estimates."""

    value: float
    low: float
    high: float

    @property
    def within_noise(self) -> bool:
        return self.low <= 0 <= self.high


def difference(a: Estimate, b: Estimate) -> Difference:
    d = a.value - b.value
    half = Z_95 * math.sqrt(a.se * a.se + b.se * b.se)
    return Difference(d, d - half, d + half)


def kish(weights: Sequence[float] | np.ndarray, counts: Sequence[float] | np.ndarray
         ) -> tuple[float, float]:
    """Kish's design effect 1 + cv² = n Σw² / (Σw)² and effective n = n / deff, for weights
    given per cell with the cell's sheet count."""
    w = np.asarray(weights, dtype=float)
    c = np.asarray(counts, dtype=float)
    n = float(c.sum())
    sw = float((w * c).sum())
    if n <= 0 or sw <= 0:
        return (1.0, 0.0)
    deff = n * float((w * w * c).sum()) / (sw * sw)
    return (deff, n / deff)
