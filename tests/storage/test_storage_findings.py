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


def test_a_scoped_read_is_filtered_before_its_limit(store: SqlStore) -> None:
    """Catches the scope applied after a campaign-wide limit (before the fix the API read the
    newest 5,000 findings of the whole campaign, then kept a coordinator's): more findings
    outside the scope than the limit, all newer than the scope's own, and the scoped read still
    returns every one of its own, and nothing that involves a unit outside the scope."""
    findings = SqlFindings(store)
    later = T0 + dt.timedelta(hours=5)
    outside = [
        finding(f"east{i}", link_code="Sh9zY8xW", unit="sh-uni",
                raised_at=later + dt.timedelta(minutes=i))
        for i in range(6)
    ]
    spanning = finding(  # a text cluster across regions: stays with the analysts
        "span", anomaly="text_near_duplicate", link_code="", unit="", raised_at=later,
        evidence=FindingEvidence(observed=12, expected=1.0, total=12, text_signature="cd" * 32,
                                 min_similarity=0.6, links=("Gd7kQ2xP", "Sh9zY8xW"),
                                 units=("gd-cyber", "sh-uni")),
    )
    own = [
        finding("own-net"),
        finding("own-burst", anomaly="burst", link_code="Gx1aB2cD", unit="gx-net"),
        finding(
            "own-ring", anomaly="text_near_duplicate", link_code="", unit="",
            evidence=FindingEvidence(observed=12, expected=1.0, total=12,
                                     text_signature="ab" * 32, min_similarity=0.6,
                                     links=("Gd7kQ2xP", "Gx1aB2cD"),
                                     units=("gd-cyber", "gx-net")),
        ),
    ]
    findings.insert_findings([*outside, spanning, *own])
    south = {"gd-cyber", "gx-net"}

    def ids(**kw: Any) -> list[str]:
        return sorted(f.finding_id for f in findings.findings("2023", **kw))

    assert len(ids(limit=3)) == 3 and not set(ids(limit=7)) & {"own-net", "own-burst"}
    assert ids(within_units=south, limit=3) == ["own-burst", "own-net", "own-ring"]
    assert ids(within_units=south, limit=1) == ["own-burst"]  # newest first, ties by id
    assert ids(within_units=south, anomaly="burst") == ["own-burst"]
    assert ids(within_units={"sh-uni"}, limit=100) == sorted(f"east{i}" for i in range(6))
    assert ids(within_units=set()) == []
