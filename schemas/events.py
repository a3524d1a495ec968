"""Every event on the log, versioned; one encoder and one strict decoder for all of them."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from schemas.access import Role
from schemas.campaign import CampaignDefinition

SCHEMA_VERSION = 1


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    v: Literal[1] = 1


class SubmissionReceived(_Event):
    """What the collector appends: the body exactly as posted, plus when and from whom (hashed)."""

    kind: Literal["submission.received"] = "submission.received"
    received_at: AwareDatetime
    client: str = ""  # keyed hash of the client address; never the address itself
    # Keyed hash of the client's network prefix (/24 IPv4, /48 IPv6), for anomaly detection;
    # empty in records written before it existed.
    network: str = ""
    body: dict[str, Any]


class CampaignDefined(_Event):
    kind: Literal["campaign.defined"] = "campaign.defined"
    campaign: str
    defined_at: AwareDatetime
    definition: CampaignDefinition


class LinkIssued(_Event):
    """A link a unit issued itself (CONTRACT §8). The fold keeps it only while the unit holds
    fewer live links than its planned_links and the code is new to the campaign, so every
    runtime and a replay agree on which issued links exist."""

    kind: Literal["link.issued"] = "link.issued"
    campaign: str
    link_code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    unit: str
    channel: str = Field(default="", max_length=64)
    issued_at: AwareDatetime
    issued_by: str = Field(default="", max_length=200)  # who asked: "<token label> [<token id>]"


class LinkRevoked(_Event):
    kind: Literal["link.revoked"] = "link.revoked"
    campaign: str
    link_code: str
    revoked_at: AwareDatetime


class DurationMedianSet(_Event):
    """The median completion time of a questionnaire version, as computed from the accepted
    sheets stored when it was published; the relative speed floor uses the latest one whose
    `effective_at` is at or before a sheet's receive time. On the registry log, so a replay
    judges every sheet against the same median the live run did."""

    kind: Literal["questionnaire.median"] = "questionnaire.median"
    campaign: str
    questionnaire_version: str
    median_seconds: float = Field(ge=0)
    samples: int = Field(ge=0)
    computed_at: AwareDatetime
    # Later than the moment it is written, so no sheet received after it was judged without it.
    effective_at: AwareDatetime


ReviewAction = Literal["invalid", "valid"]


class ReviewDecided(_Event):
    """An organiser's decision: these sheets are invalid (or valid again), and why. On the
    registry log; counts follow the latest decision covering a sheet (core.review)."""

    kind: Literal["review.decided"] = "review.decided"
    decision_id: str = Field(min_length=1, max_length=64)
    campaign: str
    action: ReviewAction
    reason: str = Field(min_length=1, max_length=2000)
    reviewer: str = Field(min_length=1, max_length=200)
    decided_at: AwareDatetime
    # Exactly one target: these submission ids, or a link's sheets received in [start, end).
    submission_ids: tuple[str, ...] = ()
    link_code: str = ""
    window_start: AwareDatetime | None = None
    window_end: AwareDatetime | None = None

    @model_validator(mode="after")
    def _one_target(self) -> ReviewDecided:
        by_link = (
            bool(self.link_code) or self.window_start is not None or self.window_end is not None
        )
        if bool(self.submission_ids) == by_link:
            raise ValueError("give either submission_ids or link_code with a window, not both")
        if by_link and (
            not self.link_code or self.window_start is None or self.window_end is None
            or self.window_end <= self.window_start
        ):
            raise ValueError("a link decision needs link_code, window_start < window_end")
        return self


class Actor(BaseModel):
    """Who made an admin write: the token's id and label (never the token or its hash)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    token_id: str = Field(max_length=64)
    label: str = Field(max_length=200)


class TokenIssued(_Event):
    """An access token came into being. Only its sha256 is on the log; the token itself was
    shown once to whoever issued it."""

    kind: Literal["token.issued"] = "token.issued"
    token_id: str = Field(min_length=1, max_length=64)
    token_sha256: str = Field(min_length=64, max_length=64)
    role: Role
    campaign: str = Field(min_length=1, max_length=64)  # "*": every campaign (admin, monitor)
    unit: str = ""
    work_region: str = ""
    label: str = Field(min_length=1, max_length=200)
    issued_at: AwareDatetime
    expires_at: AwareDatetime | None = None
    by: Actor


class TokenRevoked(_Event):
    kind: Literal["token.revoked"] = "token.revoked"
    token_id: str = Field(min_length=1, max_length=64)
    revoked_at: AwareDatetime
    by: Actor


class AdminAudited(_Event):
    """An admin write other than a token's issue or revocation (those are their own audit
    record): a campaign definition, a review decision, a median, a freeze, an export, links
    issued or revoked."""

    kind: Literal["admin.audited"] = "admin.audited"
    audit_id: str = Field(min_length=1, max_length=64)
    action: str = Field(min_length=1, max_length=64)
    campaign: str = ""
    at: AwareDatetime
    by: Actor
    detail: dict[str, str] = Field(default_factory=dict)


Status = Literal["accepted", "rejected", "test"]


class SubmissionJudged(_Event):
    """The verdict on one received submission; the row the store keeps and counts are made of."""

    kind: Literal["submission.judged"] = "submission.judged"
    submission_id: str
    campaign: str
    fingerprint: str
    source_position: str  # where in the raw log it was read, "partition:offset"
    received_at: AwareDatetime
    status: Status
    reasons: tuple[str, ...] = ()
    rules_version: str
    phase: str = ""
    link_code: str = ""
    unit: str = ""
    province: str = ""
    work_region: str = ""
    channel: str = ""
    questionnaire_version: str = ""
    respondent_province: str = ""
    respondent_city: str = ""
    age_group: str = ""
    started_at: AwareDatetime | None = None
    submitted_at: AwareDatetime | None = None
    duration_seconds: float = 0.0
    device_hash: str = ""
    client: str = ""
    answers_json: str = "{}"
    opinion: str = ""
    first_of_id: bool = True  # False for a conflicting resend of an id already judged
    network: str = ""  # keyed hash of the client's network prefix (from SubmissionReceived)


class CountChanged(_Event):
    kind: Literal["count.changed"] = "count.changed"
    campaign: str
    level: Literal["unit", "province", "work_region"]
    id: str
    valid: int
    rejected: int
    test: int
    as_of: AwareDatetime


# What the anomaly detectors (core.anomaly) look for; findings are evidence for organisers to
# review and never change a verdict or a count.
AnomalyKind = Literal[
    "burst",  # a link far above its own hourly history
    "network_cluster",  # one network prefix behind much of a link's hour
    "device_cluster",  # one device behind many sheets of a link's hour
    "answer_cluster",  # near-identical answer vectors on a link within an hour
    "text_near_duplicate",  # near-duplicate free text across the campaign
    "time_of_day",  # a link's hour-of-day profile far from the campaign's
    "speeders",  # a cohort of unusually fast sheets on a link within an hour
]


class FindingEvidence(BaseModel):
    """What a finding rests on: counts against what was expected, and where to look."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    observed: int  # sheets in the finding's scope
    expected: float  # what the reference (history, campaign) predicts for that scope
    total: int  # sheets the scope was taken from (e.g. the link's hour)
    sample_submission_ids: tuple[str, ...] = ()
    network: str = ""  # keyed hash of the network prefix (network_cluster)
    device_hash: str = ""  # device_cluster
    answer_key: str = ""  # answer_cluster: "band:hash" of the shared answers
    # text_near_duplicate: the cluster's MinHash signature (hex) over character shingles of the
    # masked free text, and the estimated Jaccard similarity a member has to it at least.
    text_signature: str = ""
    min_similarity: float = 0.0
    hours: tuple[int, ...] = ()  # time_of_day: local hours far above the campaign's share
    fast_below_seconds: float = 0.0  # speeders: what "fast" meant
    # burst: median and MAD of the link's share of the campaign's sheets per hour before
    baseline_median: float = 0.0
    baseline_mad: float = 0.0
    links: tuple[str, ...] = ()  # links involved, most sheets first (capped)
    units: tuple[str, ...] = ()


class FindingRaised(_Event):
    """A detector's finding. Re-raised with a higher revision as its evidence grows; the latest
    revision of a finding_id stands. Deterministic: a replay raises the same findings."""

    kind: Literal["finding.raised"] = "finding.raised"
    finding_id: str
    revision: int = 1
    anomaly: AnomalyKind
    detector_version: str
    campaign: str
    link_code: str = ""  # empty for campaign-wide findings (text_near_duplicate)
    unit: str = ""
    window_start: AwareDatetime
    window_end: AwareDatetime
    raised_at: AwareDatetime  # receive time of the submission that raised it (event time)
    score: float  # how far above expectation: observed / expected, or the test statistic
    evidence: FindingEvidence


Event = Annotated[
    SubmissionReceived
    | CampaignDefined
    | LinkIssued
    | LinkRevoked
    | SubmissionJudged
    | CountChanged
    | FindingRaised
    | DurationMedianSet
    | ReviewDecided
    | TokenIssued
    | TokenRevoked
    | AdminAudited,
    Field(discriminator="kind"),
]
_EVENT = TypeAdapter(Event)


class UnknownEventError(ValueError):
    """An event this code cannot read: unknown kind or schema version. Never guessed at."""


def encode_event(event: BaseModel) -> bytes:
    return event.model_dump_json().encode()


def decode_event(data: bytes | str) -> Event:
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UnknownEventError(f"event is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise UnknownEventError("event is not a JSON object")
    if type(raw.get("v")) is not int or raw["v"] != SCHEMA_VERSION:
        raise UnknownEventError(
            f"event schema version {raw.get('v')!r} is not supported (this build reads "
            f"{SCHEMA_VERSION})"
        )
    try:
        return _EVENT.validate_python(raw)
    except ValueError as exc:
        raise UnknownEventError(f"event does not match its schema: {exc}") from exc
