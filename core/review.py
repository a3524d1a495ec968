"""Review and appeal: which verdicts an organiser's decision covers, and what it does to counts.

A decision (schemas.events.ReviewDecided, on the registry log) marks sheets invalid or valid
again, by submission id or by a link over a window of receive times. It never rewrites a
verdict: the store keeps one override row per (sheet, decision) it covers (table
review_sheets), and a sheet's standing status is the one of the latest decision covering it
(by `order_key`: decision time, then id), else its first verdict's (`standing`, below; the SQL
form every read path uses is storage/standing.py). Counts are the judged counts plus, per
sheet whose standing status differs from its judged one, +1/-1 moved between valid and
rejected.

Why this is exact: an override row is a pure function of (decision, verdict), so applying a
decision again (a restart, a second worker, a replay) writes rows identical to those already
there, and the latest-decision rule does not depend on the order rows arrive in. A decision can
cover sheets judged after it was made (a link window and a lagging pipeline): whoever stores a
verdict also applies the decisions known then, and whoever records a decision applies it to what
is stored; with the registry updated before the store is read, one of the two always sees both.

What a decision can touch: the first verdict of a submission id (a conflicting resend is never
counted and stays so), credited to a unit, judged accepted or rejected. Test-phase sheets are
never counted and no decision makes them count.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from core.counting import Count
from schemas.events import ReviewDecided, SubmissionJudged

REVIEWABLE = ("accepted", "rejected")


@dataclass(frozen=True)
class ReviewTarget:
    """What a decision needs to know about a stored verdict."""

    campaign: str
    submission_id: str
    status: str
    unit: str
    province: str
    work_region: str
    link_code: str
    received_at: dt.datetime
    first_of_id: bool
    channel: str = ""
    answers_json: str = "{}"


@dataclass(frozen=True)
class Override:
    """One decision's word on one sheet; the store keeps these (table review_overrides)."""

    campaign: str
    submission_id: str
    decision_id: str
    order_key: str  # the latest decision covering a sheet is the one with the greatest key
    status: str  # the sheet's status under this decision: accepted or rejected
    judged_status: str
    unit: str
    province: str
    work_region: str
    # What the count tables group a sheet by, and its answers: the read paths correct the
    # judged counts with these rows alone (storage/standing.py).
    link_code: str = ""
    channel: str = ""
    received_at: dt.datetime = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    answers_json: str = "{}"


def target_of(judged: SubmissionJudged) -> ReviewTarget:
    return ReviewTarget(
        campaign=judged.campaign, submission_id=judged.submission_id, status=judged.status,
        unit=judged.unit, province=judged.province, work_region=judged.work_region,
        link_code=judged.link_code, received_at=judged.received_at,
        first_of_id=judged.first_of_id, channel=judged.channel, answers_json=judged.answers_json,
    )


def order_key(decision: ReviewDecided) -> str:
    """Decisions in the order they were taken: microseconds since the epoch, then id."""
    micros = round(decision.decided_at.timestamp() * 1_000_000)
    return f"{micros:020d}:{decision.decision_id}"


def reviewed_status(decision: ReviewDecided) -> str:
    return "rejected" if decision.action == "invalid" else "accepted"


def reviewable(target: ReviewTarget) -> bool:
    return target.first_of_id and target.status in REVIEWABLE and bool(target.unit)


def covers(decision: ReviewDecided, target: ReviewTarget) -> bool:
    if decision.campaign != target.campaign or not reviewable(target):
        return False
    if decision.submission_ids:
        return target.submission_id in decision.submission_ids
    assert decision.window_start is not None and decision.window_end is not None
    # Whole seconds, as the store keeps receive times.
    at = _seconds(target.received_at)
    return (
        target.link_code == decision.link_code
        and _seconds(decision.window_start) <= at < _seconds(decision.window_end)
    )


def _seconds(value: dt.datetime) -> int:
    return math.floor(value.timestamp())


def override(decision: ReviewDecided, target: ReviewTarget) -> Override:
    return Override(
        campaign=target.campaign, submission_id=target.submission_id,
        decision_id=decision.decision_id, order_key=order_key(decision),
        status=reviewed_status(decision), judged_status=target.status, unit=target.unit,
        province=target.province, work_region=target.work_region, link_code=target.link_code,
        channel=target.channel, received_at=target.received_at, answers_json=target.answers_json,
    )


class DecisionIndex:
    """The decisions of every campaign, indexed for checking a batch of fresh verdicts."""

    def __init__(self, decisions: Iterable[ReviewDecided]) -> None:
        self.by_id: dict[tuple[str, str], list[ReviewDecided]] = {}
        self.by_link: dict[tuple[str, str], list[ReviewDecided]] = {}
        for d in decisions:
            if d.submission_ids:
                for sid in d.submission_ids:
                    self.by_id.setdefault((d.campaign, sid), []).append(d)
            else:
                self.by_link.setdefault((d.campaign, d.link_code), []).append(d)

    def __bool__(self) -> bool:
        return bool(self.by_id or self.by_link)

    def overrides_for(self, targets: Iterable[ReviewTarget]) -> list[Override]:
        out: list[Override] = []
        for t in targets:
            candidates = (
                *self.by_id.get((t.campaign, t.submission_id), ()),
                *self.by_link.get((t.campaign, t.link_code), ()),
            )
            out.extend(override(d, t) for d in candidates if covers(d, t))
        return out


def overrides_for(
    decisions: Iterable[ReviewDecided], targets: Iterable[ReviewTarget]
) -> list[Override]:
    """Every (decision, sheet) pair where the decision covers the sheet."""
    return DecisionIndex(decisions).overrides_for(targets)


def standing(overrides: Iterable[Override]) -> dict[tuple[str, str], Override]:
    """Per sheet, the override of the latest decision covering it."""
    latest: dict[tuple[str, str], Override] = {}
    for o in overrides:
        key = (o.campaign, o.submission_id)
        if key not in latest or o.order_key > latest[key].order_key:
            latest[key] = o
    return latest


def corrections(overrides: Iterable[Override], campaign: str) -> dict[str, Count]:
    """What the decisions change in a campaign's per-unit counts (the store computes the same
    in SQL; this is its specification, and what the property tests check it against)."""
    out: dict[str, Count] = {}
    for (camp, _), o in standing(overrides).items():
        if camp != campaign or o.status == o.judged_status:
            continue
        c = out.setdefault(o.unit, Count())
        step = 1 if o.status == "accepted" else -1
        c.valid += step
        c.rejected -= step
    return out


def with_corrections(
    counts: Mapping[str, Count], changes: Mapping[str, Count]
) -> dict[str, Count]:
    out = {u: Count(c.valid, c.rejected, c.test) for u, c in counts.items()}
    for unit, change in changes.items():
        out.setdefault(unit, Count()).add(change)
    return out


class _ReviewStore(Protocol):
    def apply_review(self, decision: ReviewDecided) -> int: ...

    def apply_reviews_to(
        self, rows: Sequence[SubmissionJudged], decisions: DecisionIndex
    ) -> int: ...


class ReviewApplier:
    """Keeps a store's overrides in step with the registry's decisions, for whatever stores
    verdicts (the embedded processor, the distributed sink): call `after_insert` after every
    insert. It reads the decisions only after the insert, and applies each decision it has not
    seen yet to everything stored; with the decision's publisher applying it too, a verdict
    stored around the time of a decision is covered by one or the other (or both: harmless)."""

    def __init__(self, store: _ReviewStore, decisions: Callable[[], Iterable[ReviewDecided]]):
        self.store = store
        self.decisions = decisions
        self.applied: set[str] = set()

    def after_insert(self, rows: Sequence[SubmissionJudged]) -> None:
        known = list(self.decisions())
        for decision in known:
            if decision.decision_id not in self.applied:
                self.store.apply_review(decision)
                self.applied.add(decision.decision_id)
        if known and rows:
            self.store.apply_reviews_to(rows, DecisionIndex(known))


def decision_summary(decision: ReviewDecided) -> dict[str, object]:
    """The audit trail's view of one decision: who, what, when, why."""
    return {
        "decision_id": decision.decision_id,
        "campaign": decision.campaign,
        "action": decision.action,
        "reason": decision.reason,
        "reviewer": decision.reviewer,
        "decided_at": decision.decided_at.isoformat(),
        "submission_ids": list(decision.submission_ids),
        "link_code": decision.link_code or None,
        "window_start": decision.window_start.isoformat() if decision.window_start else None,
        "window_end": decision.window_end.isoformat() if decision.window_end else None,
    }


def decisions_for(
    decisions: Sequence[ReviewDecided], target: ReviewTarget
) -> list[ReviewDecided]:
    """The decisions covering one sheet, oldest first (a sheet's own audit trail)."""
    return sorted((d for d in decisions if covers(d, target)), key=order_key)
