"""The figures of one report, gathered from the store: plain data the renderers lay out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from core.counting import LeaderboardRow
from reports.queries import Scope
from reports.stats import Proportion


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
    share: Proportion


@dataclass(frozen=True)
class QuestionResult:
    id: str
    label: str
    type: str  # scale | single | multi
    answered: int  # valid samples that answered the question (the denominator)
    skipped: int
    options: list[OptionShare]
    mean: float | None = None  # scale items: mean score on the item's own scale


@dataclass(frozen=True)
class RegionIndex:
    level: str  # work_region | province | unit
    id: str
    name: str
    index: float
    answers: int  # scale-item answers the index rests on


@dataclass(frozen=True)
class Demographic:
    title: str
    rows: list[OptionShare]
    others: int = 0  # valid samples in groups below the listed ones


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

    @property
    def total(self) -> int:
        """Sample size: every sheet judged in scope (valid, rejected and test)."""
        return self.valid + self.rejected + self.test
