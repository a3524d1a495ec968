"""The statistics a report states: Wilson intervals for proportions and the satisfaction index.

Pure functions over counts; no I/O, so a test can recompute every figure independently.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

# Two-sided 95%: the standard normal quantile at 0.975.
Z_95 = 1.959963984540054


@dataclass(frozen=True)
class Proportion:
    count: int
    n: int
    share: float
    low: float
    high: float


def wilson_interval(count: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of count/n; (0, 0) when n is 0.

    Unlike the normal ("Wald") interval it stays inside [0, 1] and is not degenerate at
    shares of 0 or 1, which matter for rare options. Clamped so that 0 <= low <= count/n <=
    high <= 1 holds exactly in floating point (the formula alone gives 8.7e-19 for 0 of 400 and
    0.9999999999999998 for 300 of 300, which made error bars of negative length).
    """
    if n <= 0:
        return (0.0, 0.0)
    if not 0 <= count <= n:
        raise ValueError(f"count {count} outside 0..{n}")
    low, high = wilson_share(count / n, n, z)
    if count == 0:
        low = 0.0
    if count == n:
        high = 1.0
    return (low, high)


def wilson_share(p: float, n: float, z: float = Z_95) -> tuple[float, float]:
    """Wilson interval around a share p with a (possibly effective, fractional) sample size n;
    clamped so 0 <= low <= p <= high <= 1 exactly, and exactly 0 / 1 at p = 0 / p = 1."""
    if n <= 0:
        return (0.0, 0.0) if p <= 0 else (min(p, 1.0), min(p, 1.0))
    p = min(max(p, 0.0), 1.0)
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(max(p * (1 - p) / n + z2 / (4 * n * n), 0.0)) / (1 + z2 / n)
    low = 0.0 if p == 0.0 else min(max(0.0, centre - half), p)
    high = 1.0 if p == 1.0 else max(min(1.0, centre + half), p)
    return (low, high)


def proportion(count: int, n: int) -> Proportion:
    low, high = wilson_interval(count, n)
    return Proportion(count, n, count / n if n else 0.0, low, high)


SATISFACTION_FORMULA = (
    "满意度指数 SI = 100 × Σ (x − min) / (max − min) ÷ N，对有效样本中全部已作答的量表题求和；"
    "x 为某一作答的分值，min/max 为该题量表的最低/最高分，N 为量表题作答总数。"
    " (Satisfaction index: the mean of every answered scale item of the valid samples, each "
    "rescaled to 0–100.)"
)


def satisfaction_index(
    items: Mapping[str, tuple[int, int, Mapping[int, int]]],
) -> tuple[float, int] | None:
    """SI over scale items given as {question: (min, max, {value: count})}; with the number of
    item answers it rests on. None when no item was answered (an index of nothing)."""
    total = 0.0
    answers = 0
    for low, high, counts in items.values():
        span = high - low
        for value, count in counts.items():
            if span > 0:
                total += (value - low) / span * count
            else:
                total += count  # a one-point scale: every answer is its top
            answers += count
    if answers == 0:
        return None
    return (100.0 * total / answers, answers)
