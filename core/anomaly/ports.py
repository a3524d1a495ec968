"""Where findings are kept: the port the store's findings adapter implements. Typing only."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol, runtime_checkable

from schemas.events import AnomalyKind, FindingRaised


@runtime_checkable
class FindingStore(Protocol):
    def insert_findings(self, rows: Sequence[FindingRaised]) -> int:
        """Store findings not stored yet (by campaign, finding_id, revision); returns how many."""
        ...

    def findings(
        self, campaign: str, *, anomaly: AnomalyKind | None = None, unit: str | None = None,
        link: str | None = None, limit: int = 500, within_units: Collection[str] | None = None,
    ) -> list[FindingRaised]:
        """The latest revision of each finding of a campaign, newest first, filtered, at most
        `limit`. `within_units`: only findings every unit of which is one of these (a scoped
        caller's), filtered before the limit."""
        ...

    def finding_totals(self) -> dict[tuple[str, str], int]:
        """Findings per (campaign, anomaly kind)."""
        ...
