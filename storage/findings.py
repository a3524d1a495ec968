"""The findings table (migration 0005) over any SqlStore: the FindingStore port's adapter.

Kept apart from the verdicts' store logic: findings are evidence for organisers and share
nothing with the counts but the connection (and its lock).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Sequence
from typing import Any, Final

from schemas.events import AnomalyKind, FindingEvidence, FindingRaised
from storage import sql
from storage.base import SqlStore

COLUMNS: Final = (
    "campaign", "finding_id", "revision", "anomaly", "detector_version", "link_code", "unit",
    "links", "units", "window_start", "window_end", "raised_at", "score", "observed", "evidence",
)
_TIMES: Final = ("window_start", "window_end", "raised_at")
_READ: Final = tuple(f"toUnixTimestamp({c})" if c in _TIMES else c for c in COLUMNS)


def finding_row(f: FindingRaised) -> sql.Row:
    return (
        f.campaign, f.finding_id, f.revision, f.anomaly, f.detector_version, f.link_code, f.unit,
        list(f.evidence.links), list(f.evidence.units), sql.epoch_seconds(f.window_start),
        sql.epoch_seconds(f.window_end), sql.epoch_seconds(f.raised_at), float(f.score),
        f.evidence.observed, f.evidence.model_dump_json(),
    )


def _from_row(row: Sequence[Any]) -> FindingRaised:
    values = dict(zip(COLUMNS, row, strict=True))
    return FindingRaised(
        finding_id=str(values["finding_id"]), revision=int(values["revision"]),
        anomaly=values["anomaly"], detector_version=str(values["detector_version"]),
        campaign=str(values["campaign"]), link_code=str(values["link_code"]),
        unit=str(values["unit"]),
        window_start=dt.datetime.fromtimestamp(int(values["window_start"]), dt.UTC),
        window_end=dt.datetime.fromtimestamp(int(values["window_end"]), dt.UTC),
        raised_at=dt.datetime.fromtimestamp(int(values["raised_at"]), dt.UTC),
        score=float(values["score"]),
        evidence=FindingEvidence.model_validate(json.loads(str(values["evidence"]))),
    )


class SqlFindings:
    """Findings in the same database as the verdicts, through the store's connection."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def insert_findings(self, rows: Sequence[FindingRaised]) -> int:
        fresh = {(f.campaign, f.finding_id, f.revision): f for f in rows}
        if not fresh:
            return 0
        values = {key: finding_row(f) for key, f in fresh.items()}
        with self.store._lock:
            campaigns = sorted({k[0] for k in values})
            ids = sorted({k[1] for k in values})
            existing = self.store._execute(
                "SELECT campaign, finding_id, revision FROM findings"
                f" WHERE campaign IN {sql.in_list(campaigns)} AND finding_id IN {sql.in_list(ids)}"
            )
            for campaign, fid, revision in existing:
                values.pop((str(campaign), str(fid), int(revision)), None)
            if values:
                self.store._insert("findings", COLUMNS, list(values.values()))
        return len(values)

    def findings(
        self, campaign: str, *, anomaly: AnomalyKind | None = None, unit: str | None = None,
        link: str | None = None, limit: int = 500, within_units: Collection[str] | None = None,
    ) -> list[FindingRaised]:
        where = []
        if within_units is not None:
            if not within_units:
                return []
            where.append(_within_sql(within_units))
        if anomaly is not None:
            where.append(f"anomaly = {sql.literal(anomaly)}")
        if unit is not None:
            where.append(f"(unit = {sql.literal(unit)} OR has(units, {sql.literal(unit)}))")
        if link is not None:
            where.append(f"(link_code = {sql.literal(link)} OR has(links, {sql.literal(link)}))")
        query = (
            f"SELECT {', '.join(_READ)} FROM ("
            f" SELECT {', '.join(COLUMNS)} FROM findings WHERE campaign = {sql.literal(campaign)}"
            " ORDER BY finding_id, revision DESC LIMIT 1 BY finding_id"
            f"){' WHERE ' + ' AND '.join(where) if where else ''}"
            f" ORDER BY raised_at DESC, finding_id LIMIT {sql.literal(int(limit))}"
        )
        with self.store._lock:
            rows = self.store._execute(query)
        return [_from_row(r) for r in rows]

    def finding_totals(self) -> dict[tuple[str, str], int]:
        with self.store._lock:
            rows = self.store._execute(
                "SELECT campaign, anomaly, uniqExact(finding_id) FROM findings"
                " GROUP BY campaign, anomaly"
            )
        return {(str(c), str(a)): int(n) for c, a, n in rows}


def _within_sql(units: Collection[str]) -> str:
    """Every unit a finding involves (its own, and those of its evidence) is one of `units`,
    and it involves at least one: a campaign-wide text cluster that spans regions stays with
    the analysts, its sample ids belong to other regions too."""
    scope = sql.literal(sorted(units))
    return (
        "(unit != '' OR notEmpty(units))"
        f" AND (unit = '' OR has({scope}, unit)) AND arrayAll(u -> has({scope}, u), units)"
    )


def forget_samples(store: SqlStore, campaign: str, submission_ids: Sequence[str]) -> int:
    """Take erased sheets out of every revision of every finding that names them as a sample
    (the findings stay: they are about links and hours, not about a sheet); returns how many
    finding rows were rewritten. Call with the store's lock held and no writer running."""
    from storage import upkeep  # upkeep is the store's; imported here to keep findings light

    erased = set(submission_ids)
    rows = store._execute(
        f"SELECT {', '.join(_READ)} FROM findings WHERE campaign = {sql.literal(campaign)}"
    )
    rewritten: list[sql.Row] = []
    for row in rows:
        values = dict(zip(COLUMNS, row, strict=True))
        evidence = json.loads(str(values["evidence"]))
        samples = evidence.get("sample_submission_ids") or []
        if not erased.intersection(samples):
            continue
        evidence["sample_submission_ids"] = [s for s in samples if s not in erased]
        values["evidence"] = json.dumps(evidence, ensure_ascii=False, separators=(",", ":"))
        rewritten.append(finding_row(_from_row([values[c] for c in COLUMNS])))
    if not rewritten:
        return 0
    keys = sql.in_list([(r[1], r[2]) for r in rewritten])
    store._execute(
        f"ALTER TABLE findings DELETE WHERE campaign = {sql.literal(campaign)}"
        f" AND (finding_id, revision) IN {keys}"
    )
    upkeep.wait_for_mutations(store._execute, store.database, "findings")
    store._insert("findings", COLUMNS, rewritten)
    return len(rewritten)
