"""The findings step, shared by both runtimes: verdicts just stored -> anomaly engine -> findings.

Runs after the verdicts are in the store and never changes them; a failure here is logged and
counted but never holds up judging and counting (findings are evidence for review, not counts).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import get_args

from prometheus_client import Counter, Histogram

from core.anomaly import AnomalyEngine
from core.anomaly.ports import FindingStore
from schemas.events import AnomalyKind, FindingRaised, SubmissionJudged

log = logging.getLogger(__name__)

FINDINGS = Counter(
    "survey_findings_total", "Anomaly findings raised (first revision), by kind", ["kind"]
)
FINDING_REVISIONS = Counter(
    "survey_finding_revisions_total", "Findings raised again with grown evidence, by kind",
    ["kind"],
)
FINDINGS_FAILURES = Counter(
    "survey_findings_failures_total", "Batches whose findings could not be made or stored"
)
DETECT_SECONDS = Histogram(
    "survey_findings_detect_duration_seconds", "Anomaly detection time of one batch of verdicts",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
for _kind in get_args(AnomalyKind):
    FINDINGS.labels(kind=_kind)
    FINDING_REVISIONS.labels(kind=_kind)


class FindingsStep:
    def __init__(self, store: FindingStore, engine: AnomalyEngine) -> None:
        self.store = store
        self.engine = engine
        self.failures = 0  # batches whose detection or findings' insert failed, this run

    def process(self, rows: Sequence[SubmissionJudged]) -> list[FindingRaised]:
        """Observe the verdicts (in order) and store the findings they raise."""
        started = time.perf_counter()
        try:
            found = self.engine.observe_many(rows)
            if found:
                self.store.insert_findings(found)
        except Exception:
            log.exception("anomaly detection failed for %d verdicts; counts are unaffected",
                          len(rows))
            FINDINGS_FAILURES.inc()
            self.failures += 1
            return []
        count_findings(found, time.perf_counter() - started)
        return found


    def failures_since_start(self) -> int:
        return self.failures

    def rebuild(self, verdicts: Iterable[SubmissionJudged], chunk: int = 5000,
                stopping: Callable[[], bool] = lambda: False) -> int:
        """Fold verdicts already stored (in the order they were first observed) into a fresh
        engine, so a restart mid-window sees the window whole; returns how many. The findings
        they raise are stored too: those already stored are skipped by the store (one row per
        (finding_id, revision)), and one lost to a crash before its batch's findings were
        stored is stored now.

        Ends early, between chunks, once `stopping()`: at a million stored verdicts the rebuild
        is a minute of CPU, and a server told to stop must not wait for it (its state is in
        memory only, so nothing is left half-written)."""
        n = 0
        batch: list[SubmissionJudged] = []
        for row in verdicts:
            batch.append(row)
            if len(batch) >= chunk:
                n += self._fold(batch)
                batch = []
                if stopping():
                    return n
        return n + self._fold(batch)

    def _fold(self, rows: list[SubmissionJudged]) -> int:
        found = self.engine.observe_many(rows)
        if found:
            self.store.insert_findings(found)
        return len(rows)


def count_findings(found: Sequence[FindingRaised], seconds: float) -> None:
    DETECT_SECONDS.observe(seconds)
    for f in found:
        (FINDINGS if f.revision == 1 else FINDING_REVISIONS).labels(kind=f.anomaly).inc()
