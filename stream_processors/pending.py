"""Submissions taken by the log but not judged yet, so a status read can say "received"."""

from __future__ import annotations

import time
from collections import OrderedDict


class PendingSubmissions:
    """Bounded by age and size: it only bridges the second or so between the 202 and the verdict."""

    def __init__(self, max_age_s: float = 600.0, max_entries: int = 1_000_000) -> None:
        self.max_age_s = max_age_s
        self.max_entries = max_entries
        self._items: OrderedDict[tuple[str, str], float] = OrderedDict()

    def add(self, campaign: str, submission_id: str) -> None:
        now = time.monotonic()
        self._items[(campaign, submission_id)] = now
        self._items.move_to_end((campaign, submission_id))
        # Verdicts can land before the add (the processor is fast): age out what remains.
        while self._items:
            _, added = next(iter(self._items.items()))
            if now - added <= self.max_age_s and len(self._items) <= self.max_entries:
                break
            self._items.popitem(last=False)

    def discard(self, campaign: str, submission_id: str) -> None:
        self._items.pop((campaign, submission_id), None)

    def __contains__(self, key: object) -> bool:
        return key in self._items
