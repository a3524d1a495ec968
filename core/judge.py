"""Judging one received submission: validity, resend handling, attribution, respondent uniqueness.

Judging is split in two steps so the distributed runtime can repartition between them: `assess`
needs only what is known about this submission id; `settle_respondent` needs only what is known
about this device. The embedded runtime runs both back to back. Both are deterministic: the same
inputs always give the same verdict, which is what makes replays and redeliveries harmless.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import ValidationError

from core.ports import JudgeMemoryRow
from core.privacy import keyed_hash, mask_personal_numbers
from core.reasons import RULES_VERSION, Reason
from core.registry import Registry
from core.rules import check_answers, check_attention, check_straight_lining, check_timing
from schemas.campaign import TextQuestion
from schemas.envelope import SubmissionEnvelope
from schemas.events import Status, SubmissionJudged, SubmissionReceived

# The collector writes `device_id` to the raw log as this prefix + its keyed hash, so no raw
# device id is ever stored; a raw log from before that still holds raw ids, hashed here.
DEVICE_HASH_PREFIX = "h:"


def device_hash(hash_key: str, device_id: str | None) -> str:
    if device_id and device_id.startswith(DEVICE_HASH_PREFIX):
        return device_id[len(DEVICE_HASH_PREFIX) :]
    return keyed_hash(hash_key, device_id or "")


def fingerprint(body: dict[str, object]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Assessment:
    judged: SubmissionJudged
    # True when this exact content was judged before: the verdict is the same one again.
    resend: bool
    fingerprints: tuple[str, ...]  # what to remember for this submission id afterwards
    counts_phase: bool  # whether the phase it fell in counts


def _status(reasons: set[Reason], phase_counts: bool) -> Status:
    if not phase_counts and Reason.OUTSIDE_WINDOW not in reasons:
        return "test"
    return "rejected" if reasons else "accepted"


def assess(
    received: SubmissionReceived,
    source_position: str,
    registry: Registry,
    prior_fingerprints: Sequence[str],
    hash_key: str,
) -> Assessment:
    body = received.body
    fp = fingerprint(body)
    resend = fp in prior_fingerprints
    fingerprints = tuple(prior_fingerprints) if resend else (*prior_fingerprints, fp)
    first_of_id = not prior_fingerprints or prior_fingerprints[0] == fp
    reasons: set[Reason] = set() if first_of_id else {Reason.DUPLICATE_SUBMISSION}

    try:
        env = SubmissionEnvelope.model_validate(body)
    except ValidationError:
        # Only a raw log written by another collector version can hold this; keep and reject it.
        reasons.add(Reason.INVALID_ANSWER)
        judged = SubmissionJudged(
            submission_id=str(body.get("submission_id", ""))[:64],
            campaign=str(body.get("campaign", ""))[:64],
            fingerprint=fp,
            source_position=source_position,
            received_at=received.received_at,
            status="rejected",
            reasons=tuple(sorted(reasons)),
            rules_version=RULES_VERSION,
            client=received.client,
            first_of_id=first_of_id,
        )
        return Assessment(judged, resend, fingerprints, False)

    campaign = registry.get(env.campaign)
    phase = campaign.phase_at(received.received_at) if campaign else None
    if phase is None:
        reasons.add(Reason.OUTSIDE_WINDOW)
    attribution = campaign.attribute(env.link_code) if campaign else None
    if attribution is None:
        reasons.add(Reason.UNKNOWN_LINK)
    elif campaign and campaign.link_revoked_at(env.link_code, received.received_at):
        reasons.add(Reason.REVOKED_LINK)

    questionnaire = campaign.questionnaires.get(env.questionnaire_version) if campaign else None
    answers = dict(env.answers)
    if questionnaire is None:
        reasons.add(Reason.UNKNOWN_QUESTIONNAIRE_VERSION)
    else:
        reasons |= check_answers(questionnaire, answers)
        median = (
            campaign.median_at(env.questionnaire_version, received.received_at)
            if campaign else None
        )
        in_force = (
            median[0] if median and median[1] >= questionnaire.relative_min_samples else None
        )
        reasons |= check_timing(
            questionnaire, env.started_at, env.submitted_at, answers, in_force
        )
        reasons |= check_straight_lining(questionnaire, answers)
        reasons |= check_attention(questionnaire, answers)
        for q in questionnaire.questions:
            if isinstance(q, TextQuestion) and isinstance(answers.get(q.id), str):
                answers[q.id] = mask_personal_numbers(str(answers[q.id]))

    counts_phase = phase is not None and phase.counts
    respondent = env.respondent
    judged = SubmissionJudged(
        submission_id=env.submission_id,
        campaign=env.campaign,
        fingerprint=fp,
        source_position=source_position,
        received_at=received.received_at,
        status=_status(reasons, counts_phase),
        reasons=tuple(sorted(reasons)),
        rules_version=RULES_VERSION,
        phase=phase.name if phase else "",
        link_code=env.link_code,
        unit=attribution.unit if attribution else "",
        province=attribution.province if attribution else "",
        work_region=attribution.work_region if attribution else "",
        channel=attribution.channel if attribution else "",
        questionnaire_version=env.questionnaire_version,
        respondent_province=respondent.province or "",
        respondent_city=respondent.city or "",
        age_group=respondent.age_group or "",
        started_at=env.started_at,
        submitted_at=env.submitted_at,
        duration_seconds=(env.submitted_at - env.started_at).total_seconds(),
        device_hash=device_hash(hash_key, env.device_id),
        client=received.client,
        answers_json=json.dumps(answers, ensure_ascii=False, sort_keys=True),
        opinion=mask_personal_numbers(env.opinion or ""),
        first_of_id=first_of_id,
        network=received.network,
    )
    return Assessment(judged, resend, fingerprints, counts_phase)


def device_key(judged: SubmissionJudged) -> str:
    """The key respondent uniqueness is decided under; empty when there is no device id."""
    return f"{judged.campaign}\x1f{judged.device_hash}" if judged.device_hash else ""


def body_device_key(body: Mapping[str, object], hash_key: str) -> str:
    """`device_key` of the verdict a received body will get, read before judging it (a body
    whose envelope turns out invalid gets no device key; this may then name one: harmless)."""
    campaign, device = body.get("campaign"), body.get("device_id")
    if not isinstance(campaign, str) or not isinstance(device, str) or not device:
        return ""
    return f"{campaign}\x1f{device_hash(hash_key, device)}"


def settle_respondent(
    judged: SubmissionJudged, device_first: str | None
) -> tuple[SubmissionJudged, str | None]:
    """Apply duplicate_respondent given the first accepted submission id seen for the device.

    Returns the final verdict and what the device's first accepted submission is afterwards.
    The earlier answer is the one credited; a later one from the same device is rejected.
    """
    if not judged.device_hash:
        return judged, device_first
    if device_first is not None and device_first != judged.submission_id:
        if judged.status == "test":
            return judged, device_first  # test answers are never counted, so never compete
        reasons = tuple(sorted({*judged.reasons, Reason.DUPLICATE_RESPONDENT}))
        return judged.model_copy(update={"reasons": reasons, "status": "rejected"}), device_first
    if judged.status == "accepted" and device_first is None:
        return judged, judged.submission_id
    return judged, device_first


class JudgeMemory(Protocol):
    """What judging remembers between submissions, keyed by `memory_key` and `device_key`."""

    def fingerprints_of(self, key: str) -> tuple[str, ...]: ...

    def set_fingerprints(self, key: str, fingerprints: tuple[str, ...]) -> None: ...

    def device_first_of(self, key: str) -> str | None: ...

    def set_device_first(self, key: str, submission_id: str) -> None: ...


def memory_key(body: Mapping[str, object]) -> str:
    """The key a received body's fingerprints are remembered under (any body, valid or not)."""
    return f"{body.get('campaign', '')}\x1f{body.get('submission_id', '')}"


@dataclass
class JudgeState:
    """Everything in RAM, growing with the campaign: for replays, tests and benchmarks. The
    embedded processor uses core.judge_memory.BoundedJudgeMemory instead."""

    fingerprints: dict[str, tuple[str, ...]]
    device_first: dict[str, str]

    @classmethod
    def empty(cls) -> JudgeState:
        return cls({}, {})

    def fingerprints_of(self, key: str) -> tuple[str, ...]:
        return self.fingerprints.get(key, ())

    def set_fingerprints(self, key: str, fingerprints: tuple[str, ...]) -> None:
        self.fingerprints[key] = fingerprints

    def device_first_of(self, key: str) -> str | None:
        return self.device_first.get(key)

    def set_device_first(self, key: str, submission_id: str) -> None:
        self.device_first[key] = submission_id

    def remember(self, row: JudgeMemoryRow) -> None:
        """Fold a stored verdict back in (used to rebuild the state after a restart)."""
        key = f"{row.campaign}\x1f{row.submission_id}"
        self.fingerprints[key] = with_stored(self.fingerprints.get(key, ()), row)
        if row.device_hash and row.status == "accepted":
            self.device_first.setdefault(f"{row.campaign}\x1f{row.device_hash}", row.submission_id)


def with_stored(fingerprints: tuple[str, ...], row: JudgeMemoryRow) -> tuple[str, ...]:
    """An id's known fingerprints with a stored verdict's added: the first one's goes first."""
    if row.fingerprint in fingerprints:
        return fingerprints
    if row.first_of_id:
        return (row.fingerprint, *fingerprints)
    return (*fingerprints, row.fingerprint)


def judge(
    received: SubmissionReceived,
    source_position: str,
    registry: Registry,
    state: JudgeMemory,
    hash_key: str,
) -> tuple[SubmissionJudged, bool]:
    """Both steps against a judging memory; returns the verdict and whether it is a resend."""
    key = memory_key(received.body)
    prior = state.fingerprints_of(key)
    assessment = assess(received, source_position, registry, prior, hash_key)
    if assessment.fingerprints != prior:
        state.set_fingerprints(key, assessment.fingerprints)
    dk = device_key(assessment.judged)
    judged, first = settle_respondent(assessment.judged, state.device_first_of(dk) if dk else None)
    # A resend is not counted, so it must not claim the device either: a retry received in a
    # later phase (test -> collection, or before the window -> in it) would otherwise block
    # the device's next, counted answer.
    if dk and first is not None and not assessment.resend:
        state.set_device_first(dk, first)
    return judged, assessment.resend
