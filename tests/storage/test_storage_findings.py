"""The findings table (migration 0005) through storage.findings, on chDB and ClickHouse."""

from __future__ import annotations

import datetime as dt
from typing import Any

from schemas.events import FindingEvidence, FindingRaised
from storage import SqlStore
from storage.findings import SqlFindings

T0 = dt.datetime(2023, 9, 14, 2, 0, tzinfo=dt.UTC)


def finding(fid: str, revision: int = 1, **fields: Any) -> FindingRaised:
    evidence = fields.pop("evidence", None) or FindingEvidence(
        observed=20 * revision, expected=0.5, total=40, sample_submission_ids=("s1", "s2"),
        network="n" * 32, links=(fields.get("link_code", "Gd7kQ2xP"),),
        units=(fields.get("unit", "gd-cyber"),),
    )
    values: dict[str, Any] = {
        "finding_id": fid, "revision": revision, "anomaly": "network_cluster",
        "detector_version": "2026.1", "campaign": "2023", "link_code": "Gd7kQ2xP",
        "unit": "gd-cyber", "window_start": T0, "window_end": T0 + dt.timedelta(hours=1),
        "raised_at": T0 + dt.timedelta(minutes=revision), "score": 40.0 * revision,
        "evidence": evidence, **fields,
    }
    return FindingRaised(**values)


def test_latest_revision_of_each_finding_stands_and_reads_back_whole(store: SqlStore) -> None:
    findings = SqlFindings(store)
    first, second = finding("f1", 1), finding("f1", 2)
    assert findings.insert_findings([first]) == 1
    assert findings.insert_findings([second, first]) == 1  # the stored revision is not repeated
    assert findings.insert_findings([second]) == 0
    assert findings.findings("2023") == [second]
    assert findings.finding_totals() == {("2023", "network_cluster"): 1}


def test_findings_filter_by_kind_unit_and_link(store: SqlStore) -> None:
    findings = SqlFindings(store)
    ring = finding(
        "ring", anomaly="text_near_duplicate", link_code="", unit="",
        evidence=FindingEvidence(observed=12, expected=1.0, total=12, text_signature="ab" * 32,
                                 min_similarity=0.6, links=("Gd7kQ2xP", "Gx1aB2cD"),
                                 units=("gd-cyber", "gx-assoc")),
    )
    other = finding("other", link_code="Zz9yX8wV", unit="zz-unit", anomaly="burst")
    findings.insert_findings([finding("net"), ring, other])
    ids = lambda **kw: sorted(f.finding_id for f in findings.findings("2023", **kw))  # noqa: E731
    assert ids() == ["net", "other", "ring"]
    assert ids(anomaly="burst") == ["other"]
    assert ids(link="Gx1aB2cD") == ["ring"]  # a campaign-wide finding, through its links
    assert ids(link="Gd7kQ2xP") == ["net", "ring"]
    assert ids(unit="zz-unit") == ["other"]
    assert findings.findings("other-campaign") == []
    assert [f.finding_id for f in findings.findings("2023", limit=1)] == ["net"]  # ties by id
