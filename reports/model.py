"""The figures of one report, gathered from the store: plain data the renderers lay out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from core.counting import LeaderboardRow
from reports.estimates import Difference, Estimate
from reports.queries import Scope
from reports.stats import Proportion
from reports.weighting import Weights


@dataclass(frozen=True)
class CurvePoint:
    day: str  # YYYY-MM-DD in the campaign's timezone (Asia/Shanghai)
    hour: int
    valid: int
    rejected: int
    test: int


@dataclass(frozen=True)
class OptionShare:
    option: str
    share: Proportion  # unweighted, Wilson interval
    weighted: Estimate | None = None
    previous: Estimate | None = None  # the previous campaign's weighted share
    change: Difference | None = None  # weighted − previous, with its interval


@dataclass(frozen=True)
class QuestionResult:
    id: str
    label: str
    type: str  # scale | single | multi
    answered: int  # valid samples that answered the question (the denominator)
    skipped: int
    options: list[OptionShare]
    mean: float | None = None  # scale items: mean score on the item's own scale
    weighted_mean: Estimate | None = None
    previous_mean: Estimate | None = None
    mean_change: Difference | None = None
    group: str = ""  # the section it is laid out in


@dataclass(frozen=True)
class RegionIndex:
    level: str  # work_region | province | unit
    id: str
    name: str
    index: float  # unweighted
    answers: int  # scale-item answers the index rests on
    weighted: Estimate | None = None


@dataclass(frozen=True)
class Demographic:
    title: str
    rows: list[OptionShare]
    others: int = 0  # valid samples in groups below the listed ones


@dataclass(frozen=True)
class GroupGap:
    """The largest difference in the weighted index between groups of one dimension."""

    dimension: str
    high: str
    high_index: Estimate
    low: str
    low_index: Estimate
    gap: Difference


@dataclass(frozen=True)
class Comparison:
    """The report's weighted index against another: the nation's, or the previous campaign's."""

    label: str
    other: Estimate
    change: Difference


@dataclass
class ReportData:
    scope: Scope
    title: str
    scope_label: str
    generated_at: dt.datetime
    valid: int = 0
    rejected: int = 0
    test: int = 0
    reasons: list[tuple[str, int]] = field(default_factory=list)
    curve: list[CurvePoint] = field(default_factory=list)
    units: list[LeaderboardRow] = field(default_factory=list)
    provinces: list[LeaderboardRow] = field(default_factory=list)
    work_regions: list[LeaderboardRow] = field(default_factory=list)
    questions: list[QuestionResult] = field(default_factory=list)
    satisfaction: list[RegionIndex] = field(default_factory=list)
    overall_index: float | None = None
    demographics: list[Demographic] = field(default_factory=list)
    opinions_total: int = 0
    opinion_sample: list[str] = field(default_factory=list)
    themes: list[tuple[str, int]] = field(default_factory=list)
    themes_from: int = 0  # opinions the themes were counted over
    eligible: bool = False  # more than the threshold of valid samples
    kind: str = "national"  # national | work_region | province | topic
    weights: Weights | None = None
    index: Estimate | None = None  # weighted satisfaction index (0-100)
    index_unweighted: Estimate | None = None
    nation: Comparison | None = None
    previous: Comparison | None = None
    previous_campaign: str | None = None
    gaps: list[GroupGap] = field(default_factory=list)
    duration_median: float | None = None
    basis: list[str] = field(default_factory=list)  # what the figures rest on

    @property
    def total(self) -> int:
        """Sample size: every sheet judged in scope (valid, rejected and test)."""
        return self.valid + self.rejected + self.test
