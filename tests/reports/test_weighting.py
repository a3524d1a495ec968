"""Weights against a population whose truth is known: pure computation, no store."""

from __future__ import annotations

import json

import numpy as np

from reports.estimates import CellSums, ratio
from reports.weighting import OTHER, compute_weights, mapped_key
from schemas.campaign import CampaignDefinition, Margin
from tests.reports.support import example_definition

REPLICATES = 100
SAMPLE = 3_000
ITEMS = 3


def _population(definition: CampaignDefinition, rng: np.random.Generator
                ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Provinces of different sizes (their internet users) and satisfaction; the units' effort
    (how hard they recruit) rises with satisfaction, so the raw sample over-represents the
    satisfied provinces."""
    ids = [p.id for p in definition.provinces]
    users = np.array([p.internet_users for p in definition.provinces], dtype=float)
    mean = rng.uniform(0.35, 0.85, len(ids))  # each province's mean rescaled item score
    effort = np.exp(4.0 * (mean - mean.mean())) * rng.uniform(0.7, 1.3, len(ids))
    return ids, users, mean, effort


def _index_cells(ids: list[str], mean: np.ndarray, effort: np.ndarray,
                 rng: np.random.Generator) -> tuple[dict[tuple[str, ...], int],
                                                    dict[tuple[str, ...], CellSums]]:
    counts = rng.multinomial(SAMPLE, effort / effort.sum())
    cells, sums = {}, {}
    for pid, mu, n in zip(ids, mean, counts, strict=True):
        if n == 0:
            continue
        # Each of ITEMS items on a 1-5 scale: (binomial(4, mu)) / 4 rescaled to 0-1, mean mu.
        y = rng.binomial(4, mu, size=(n, ITEMS)).sum(axis=1) / 4.0
        cells[(pid,)] = int(n)
        sums[(pid,)] = CellSums(float(y.sum()), ITEMS * n, float((y * y).sum()),
                                ITEMS * ITEMS * n, ITEMS * float(y.sum()), int(n))
    return cells, sums


def test_weighted_index_interval_covers_the_truth_and_the_unweighted_does_not() -> None:
    """Catches: weights that do not reach the population (the unweighted bias stays), or an
    interval that ignores the weights (too narrow: coverage falls under 93 of 100)."""
    definition = example_definition()
    rng = np.random.default_rng(2026)
    ids, users, mean, effort = _population(definition, rng)
    truth = 100 * float((users * mean).sum() / users.sum())
    weighted_hits = unweighted_hits = 0
    for _ in range(REPLICATES):
        cells, sums = _index_cells(ids, mean, effort, rng)
        weights = compute_weights(definition, cells)
        w = ratio(sums, weights.by_cell, bounds=(0, 1), scale=100)
        u = ratio(sums, {k: 1.0 for k in sums}, bounds=(0, 1), scale=100)
        weighted_hits += w.low <= truth <= w.high
        unweighted_hits += u.low <= truth <= u.high
    print(f"truth {truth:.2f}: weighted covers {weighted_hits}/100,"
          f" unweighted {unweighted_hits}/100")
    assert weighted_hits >= 93
    assert unweighted_hits <= 20


def test_weights_reproduce_the_declared_margins_within_a_tenth_of_a_point() -> None:
    base = example_definition()
    ages = {"under-18": 0.17, "18-24": 0.13, "25-34": 0.2, "35-44": 0.2, "45-54": 0.15,
            "55-64": 0.1, "65+": 0.05}
    devices = {"手机": 0.7, "台式电脑": 0.1, "笔记本电脑": 0.1, "平板电脑": 0.05, "其他": 0.05}
    definition = base.model_copy(update={"margins": [
        Margin(field="respondent.age_group", shares=ages),
        Margin(question="q9", shares=devices),
    ]})
    rng = np.random.default_rng(7)
    present = [p for p in base.provinces][:20]  # 11 provinces without a sheet: left out
    cells: dict[tuple[str, ...], int] = {}
    for p in present:
        for age in ages:
            for device in devices:
                cells[(p.id, age, json.dumps(device, ensure_ascii=False))] = int(
                    rng.integers(0, 60))
    weights = compute_weights(definition, cells)
    assert len(weights.provinces_left_out) == len(base.provinces) - 20
    total = sum(weights.of(mapped_key(definition.margins, k)) * n for k, n in cells.items())

    def share(position: int, value: str) -> float:
        return sum(weights.of(mapped_key(definition.margins, k)) * n
                   for k, n in cells.items() if mapped_key(definition.margins, k)[position]
                   == value) / total

    for age, target in ages.items():
        assert abs(share(1, age) - target) < 0.001, age
    for device, target in devices.items():
        assert abs(share(2, device) - target) < 0.001, device
    users = sum(p.internet_users for p in present)
    for p in present:
        assert abs(share(0, p.id) - p.internet_users / users) < 0.001, p.id
    assert OTHER not in {k[1] for k in weights.counts}
    assert weights.deff > 1 and 0 < weights.n_eff < weights.n
