"""The ports the core's adapters implement: a durable log and a store. Typing only, no I/O."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Final, Protocol

from core.counting import Count
from core.review import DecisionIndex, ReviewTarget
from schemas.campaign import Question
from schemas.events import ReviewDecided, SubmissionJudged


class LogUnavailableError(Exception):
    """The log could not durably take a write; nothing was stored and the client may retry.

    `reason` is what a client may be told (the collector's 503 `detail` starts with it); the
    message, which may name paths and hosts, is for the operator's log only."""

    def __init__(self, message: str = "", *, reason: str = "log unavailable") -> None:
        super().__init__(message)
        self.reason = reason


class RawLog(Protocol):
    """Where the collector appends. `append` returns only once the write is durable."""

    async def append(self, key: bytes, value: bytes) -> object: ...

    def healthy(self) -> bool: ...


@dataclass(frozen=True)
class SubmissionStatus:
    submission_id: str
    status: str
    reasons: tuple[str, ...]
    unit: str
    province: str
    # Conflicting resends of the id (same id, other content): kept as evidence, never counted.
    conflicts: int = 0


@dataclass(frozen=True)
class JudgeMemoryRow:
    """What judging must remember about a stored verdict to rebuild its state after a restart."""

    campaign: str
    submission_id: str
    fingerprint: str
    first_of_id: bool
    device_hash: str
    status: str


# What regional counts can be grouped by. A store maps each name to a column of its own; a name
# outside this list is refused, so no grouping ever comes from a caller's text.
BREAKDOWN_DIMENSIONS: Final = (
    "province",  # credited through the link: the unit's province
    "work_region",
    "unit",
    "link",
    "channel",
    "respondent_province",  # what the respondent said, kept for analysis
    "city",  # the respondent's city
    "day",  # receive date in Asia/Shanghai, "YYYY-MM-DD"
    "hour",  # receive hour in Asia/Shanghai, 0-23
    "status",
    "phase",
    "reason",  # a submission counts once under each of its reason codes ("" when none)
)


@dataclass(frozen=True)
class RegionFilter:
    """Which verdicts a regional query looks at; None means "any". Dates are inclusive and are
    receive dates in Asia/Shanghai, the day the campaign's phases are defined in."""

    province: str | None = None
    work_region: str | None = None
    unit: str | None = None
    link: str | None = None
    channel: str | None = None
    respondent_province: str | None = None
    city: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    phase: str | None = None

    def given(self) -> dict[str, str]:
        """The filters that are set, as text (dates ISO), in declaration order."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = value.isoformat() if isinstance(value, dt.date) else str(value)
        return out


@dataclass(frozen=True)
class BreakdownRow:
    """One group of a breakdown: its value per dimension, in the order asked for, and counts.
    Values are text, except `hour` (an int); `day` is "YYYY-MM-DD"."""

    group: tuple[tuple[str, str | int], ...]
    valid: int
    rejected: int
    test: int
    # Conflicting resends (same id, other content): listed as evidence, never a sheet, so
    # never in valid, rejected or test (CONTRACT §6).
    conflicts: int = 0


@dataclass(frozen=True)
class AnswerDistribution:
    """How the accepted submissions in a region answered one question.

    `accepted`: accepted submissions in scope; `total`: how many of them answered the question;
    `counts`: per option (single, multi: each chosen option counts; a respondent may choose
    several) or scale point, every defined one listed even at 0, in the questionnaire's order;
    empty for a text question, whose answers are only counted.
    """

    question: str
    type: str
    accepted: int
    total: int
    counts: tuple[tuple[str, int], ...]


class Store(Protocol):
    """Where verdicts are kept for queries (ClickHouse server, or chDB when embedded)."""

    def migrate(self) -> list[str]: ...

    def insert_judged(self, rows: Sequence[SubmissionJudged]) -> int: ...

    def unit_counts(self, campaign: str) -> dict[str, Count]: ...

    def repair_counts(self) -> None: ...

    def exact_unit_counts(self, campaign: str) -> dict[str, Count]:
        """The same counts recomputed from the stored verdicts, each counted once (reconcile)."""
        ...

    def submission_status(self, campaign: str, submission_id: str) -> SubmissionStatus | None: ...

    def iter_judge_memory(self) -> Iterator[JudgeMemoryRow]: ...

    def judge_memory_of(self, ids: Sequence[tuple[str, str]]) -> Sequence[JudgeMemoryRow]:
        """The stored verdicts of these (campaign, submission id)s, each once."""
        ...

    def device_firsts(self, devices: Sequence[tuple[str, str]]) -> Mapping[tuple[str, str], str]:
        """The accepted submission id of each of these (campaign, device hash)es that has one."""
        ...

    def breakdown(
        self, campaign: str, by: Sequence[str], filters: RegionFilter
    ) -> list[BreakdownRow]:
        """Valid/rejected/test counts grouped by `by` (names from BREAKDOWN_DIMENSIONS; empty:
        one row of totals), each verdict once; ValueError for a name outside that list."""
        ...

    def answer_distribution(
        self, campaign: str, question: Question, filters: RegionFilter
    ) -> AnswerDistribution:
        """The answers to `question` (from the campaign's questionnaire) over accepted
        submissions in scope."""
        ...

    def aggregate(self, query: str) -> Sequence[Sequence[Any]]:
        """Rows of one read-only aggregate SELECT (the reports' figures, reports/queries.py)."""
        ...

    # Review decisions (core/review.py): every count above already follows them (the standing
    # status, storage/standing.py).
    def apply_review(self, decision: ReviewDecided) -> int:
        """Apply a decision to the stored verdicts; how many sheets it covers. Idempotent."""
        ...

    def apply_reviews_to(self, rows: Sequence[SubmissionJudged], decisions: DecisionIndex) -> int:
        """Apply known decisions to verdicts just stored (call after insert_judged)."""
        ...

    def review_standing(self, campaign: str) -> dict[str, tuple[int, int]]: ...

    def review_target(self, campaign: str, submission_id: str) -> ReviewTarget | None: ...

    def submission_review(self, campaign: str, submission_id: str) -> tuple[str, str] | None: ...

    def rules_versions(self, campaign: str) -> list[str]: ...

    def duration_median(self, campaign: str, questionnaire_version: str) -> tuple[float, int]: ...

    def close(self) -> None: ...
