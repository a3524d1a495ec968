"""Thresholds of the anomaly detectors, with the defaults the README's measurements were made with.

Every detector flags only when several conditions hold at once: enough sheets (a floor, so small
numbers never alarm), a large share of the scope, and a large lift over what the reference
predicts (the link's own history, or the rest of the campaign). Raising a floor trades recall on
small padding for fewer findings on honest traffic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DETECTOR_VERSION = "2026.1"


@dataclass(frozen=True)
class BurstConfig:
    """A link's sheets in the current hour against its usual share of the campaign's sheets
    (median and MAD over its last `history_hours` hours), times the campaign's sheets so far."""

    history_hours: int = 48
    min_history_hours: int = 6  # hours of history before the link can burst
    min_count: int = 40  # sheets in the hour, at least
    min_ratio: float = 5.0  # times the expected count (at least `expected_floor`)
    expected_floor: float = 2.0
    min_z: float = 6.0  # (count - expected) / max(1.4826 MAD scaled, sqrt(expected), 1)


@dataclass(frozen=True)
class ClusterConfig:
    """One key (network prefix, device, shared answers) behind much of a link's hour."""

    min_count: int
    min_share: float  # of the link's sheets in the hour
    min_lift: float  # over the key's share in the rest of the campaign
    min_reference: int = 500  # campaign sheets before the rest of the campaign is a reference


@dataclass(frozen=True)
class AnswerConfig:
    bands: int = 4  # closed questions are split into this many bands (by question id)
    min_questions_per_band: int = 2
    cluster: ClusterConfig = field(
        default_factory=lambda: ClusterConfig(min_count=20, min_share=0.3, min_lift=5.0)
    )


@dataclass(frozen=True)
class TextConfig:
    min_chars: int = 15  # letters and digits after normalisation; shorter texts are too common
    shingle: int = 3
    signature_size: int = 32  # MinHash values per text (similarity is estimated on all)
    bands: int = 8  # LSH: 8 bands of 2 values find texts of Jaccard 0.6 with p ~ 0.97
    rows: int = 2
    min_similarity: float = 0.6  # estimated Jaccard to join a cluster
    min_count: int = 10  # members before a cluster is a finding
    max_clusters: int = 100_000  # least recently joined clusters are forgotten beyond this
    bucket_candidates: int = 4  # clusters remembered per LSH bucket


@dataclass(frozen=True)
class TimeOfDayConfig:
    min_count: int = 100  # link sheets before its profile is compared
    check_every: int = 25  # compare every this many sheets of the link
    min_g: float = 80.0  # G-test statistic (23 degrees of freedom; 80 is p ~ 1e-8)
    min_jsd: float = 0.15  # Jensen-Shannon divergence (bits) as the effect size
    hour_min_count: int = 5  # an hour is listed when it has this many and
    hour_min_lift: float = 3.0  # this many times its expected share


@dataclass(frozen=True)
class SpeedConfig:
    fast_factor: float = 0.4  # "fast" is under this share of the campaign's median duration
    min_count: int = 15
    min_share: float = 0.3
    min_lift: float = 3.0
    min_reference: int = 500


@dataclass(frozen=True)
class AnomalyConfig:
    window_seconds: int = 3600  # link-level windows are tumbling hours of receive time
    timezone: str = "Asia/Shanghai"  # of the time-of-day profiles
    max_links: int = 200_000  # links with state (beyond: new links are not watched)
    max_samples: int = 5  # submission ids kept as evidence per finding
    burst: BurstConfig = field(default_factory=BurstConfig)
    network: ClusterConfig = field(
        default_factory=lambda: ClusterConfig(min_count=20, min_share=0.5, min_lift=10.0)
    )
    device: ClusterConfig = field(
        default_factory=lambda: ClusterConfig(min_count=5, min_share=0.0, min_lift=10.0)
    )
    answers: AnswerConfig = field(default_factory=AnswerConfig)
    text: TextConfig = field(default_factory=TextConfig)
    time_of_day: TimeOfDayConfig = field(default_factory=TimeOfDayConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)
