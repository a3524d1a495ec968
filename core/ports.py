"""The ports the core's adapters implement: a durable log and a store. Typing only, no I/O."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from core.counting import Count
from schemas.events import SubmissionJudged


class LogUnavailableError(Exception):
    """The log could not durably take a write; nothing was stored and the client may retry."""


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


@dataclass(frozen=True)
class JudgeMemoryRow:
    """What judging must remember about a stored verdict to rebuild its state after a restart."""

    campaign: str
    submission_id: str
    fingerprint: str
    first_of_id: bool
    device_hash: str
    status: str


class Store(Protocol):
    """Where verdicts are kept for queries (ClickHouse server, or chDB when embedded)."""

    def migrate(self) -> list[str]: ...

    def insert_judged(self, rows: Sequence[SubmissionJudged]) -> int: ...

    def unit_counts(self, campaign: str) -> dict[str, Count]: ...

    def exact_unit_counts(self, campaign: str) -> dict[str, Count]:
        """The same counts recomputed from the stored verdicts, each counted once (reconcile)."""
        ...

    def submission_status(self, campaign: str, submission_id: str) -> SubmissionStatus | None: ...

    def iter_judge_memory(self) -> Iterator[JudgeMemoryRow]: ...

    def close(self) -> None: ...
