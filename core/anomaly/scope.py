"""Which verdicts a finding is about: its scope, decided again from a verdict's own features.

Used to measure detectors (precision and recall over sheets) and by anyone reviewing a finding.
A link-level finding covers its link's sheets in its window that share the finding's key; a
time-of-day finding covers its link's sheets in the listed local hours; a near-duplicate text
finding covers every sheet of the campaign, from its first member on, whose text is similar
enough to the cluster's signature.
"""

from __future__ import annotations

from typing import Any

from core.anomaly.engine import AnomalyEngine
from core.anomaly.sketches import signature_from_hex, similarity
from schemas.events import FindingRaised, SubmissionJudged


def covers(
    engine: AnomalyEngine, finding: FindingRaised, judged: SubmissionJudged,
    memo: dict[str, Any] | None = None,
) -> bool:
    """Whether the finding's scope holds the verdict. `memo`, one dict per verdict, keeps its
    features between calls when many findings are checked against it."""
    if judged.campaign != finding.campaign or judged.received_at < finding.window_start:
        return False
    memo = {} if memo is None else memo
    ev = finding.evidence
    if finding.anomaly == "text_near_duplicate":
        if "signature" not in memo:
            memo["signature"] = engine.text_signature(judged)
        signature = memo["signature"]
        return signature is not None and similarity(
            signature, signature_from_hex(ev.text_signature)
        ) >= ev.min_similarity
    if judged.link_code != finding.link_code:
        return False
    if finding.anomaly == "time_of_day":
        return engine.local_hour(judged.received_at) in ev.hours
    if judged.received_at >= finding.window_end:
        return False
    if finding.anomaly == "burst":
        return True
    if finding.anomaly == "network_cluster":
        return judged.network == ev.network
    if finding.anomaly == "device_cluster":
        return judged.device_hash == ev.device_hash
    if finding.anomaly == "answer_cluster":
        if "answer_keys" not in memo:
            memo["answer_keys"] = engine.answer_keys(judged)
        return ev.answer_key in memo["answer_keys"]
    if finding.anomaly == "speeders":
        return judged.duration_seconds < ev.fast_below_seconds
    return False


def latest(findings: list[FindingRaised]) -> list[FindingRaised]:
    """The latest revision of each finding, in first-raised order."""
    out: dict[str, FindingRaised] = {}
    for f in findings:
        if f.finding_id not in out or f.revision > out[f.finding_id].revision:
            out[f.finding_id] = f
    return list(out.values())
