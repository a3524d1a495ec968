"""What the detectors keep: per link (the current window's counters, its history and hourly
profile) and per campaign (the reference sketches, the duration histogram, the text index), and
the two statistics over their histograms."""

from __future__ import annotations

import datetime as dt
import math
from collections import deque
from dataclasses import dataclass, field

from core.anomaly.config import AnomalyConfig
from core.anomaly.sketches import CountMin, MinHasher, SpaceSaving
from core.anomaly.text_index import TextIndex

DURATION_BIN = 0.05  # width of a duration histogram bin, in ln(seconds)
DURATION_BINS = 240  # up to e^12 s, about 45 hours


@dataclass
class LinkState:
    """One link's counters for the current window, its history and hourly profile."""

    unit: str
    first_window: int
    window: int
    n: int = 0
    samples: list[str] = field(default_factory=list)
    networks: SpaceSaving = field(default_factory=SpaceSaving)
    devices: SpaceSaving = field(default_factory=SpaceSaving)
    answers: SpaceSaving = field(default_factory=SpaceSaving)
    fast: int = 0
    fast_samples: list[str] = field(default_factory=list)
    history: deque[float] = field(default_factory=deque)  # share of the campaign per window
    baseline: tuple[float, float] | None = None  # median and MAD of `history`, once watched
    emitted: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> (revision, observed)
    hours: list[int] = field(default_factory=lambda: [0] * 24)
    hours_n: int = 0
    first_at: dt.datetime | None = None
    hours_samples: dict[int, list[str]] = field(default_factory=dict)


class CampaignState:
    """One campaign's reference: what a link of it is compared with."""

    def __init__(self, config: AnomalyConfig, minhash: MinHasher) -> None:
        self.n = 0  # attributed sheets (the link-level reference)
        self.networks = CountMin()
        self.devices = CountMin()
        self.answers = CountMin()
        self.hours = [0] * 24
        self.window_counts: dict[int, int] = {}  # attributed sheets per recent window
        self.durations = [0] * DURATION_BINS
        self.median_duration = 0.0
        self.fast = 0
        self.links: dict[str, LinkState] = {}
        self.text = TextIndex(config, minhash)


def median_of_histogram(bins: list[int]) -> float:
    total = sum(bins)
    if not total:
        return 0.0
    half, seen = total / 2, 0
    for i, c in enumerate(bins):
        seen += c
        if seen >= half:
            return math.exp((i + 0.5) * DURATION_BIN)
    return math.exp(len(bins) * DURATION_BIN)


def jsd(a: list[int], b: list[int]) -> float:
    """Jensen-Shannon divergence, in bits, between two count vectors taken as distributions."""
    sa, sb = sum(a), sum(b)
    if not sa or not sb:
        return 0.0
    out = 0.0
    for x, y in zip(a, b, strict=True):
        p, q = x / sa, y / sb
        m = (p + q) / 2
        if p:
            out += 0.5 * p * math.log2(p / m)
        if q:
            out += 0.5 * q * math.log2(q / m)
    return out
