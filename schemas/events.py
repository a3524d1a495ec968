"""Every event on the log, versioned; one encoder and one strict decoder for all of them."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

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
    body: dict[str, Any]


class CampaignDefined(_Event):
    kind: Literal["campaign.defined"] = "campaign.defined"
    campaign: str
    defined_at: AwareDatetime
    definition: CampaignDefinition


class LinkRevoked(_Event):
    kind: Literal["link.revoked"] = "link.revoked"
    campaign: str
    link_code: str
    revoked_at: AwareDatetime


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


class CountChanged(_Event):
    kind: Literal["count.changed"] = "count.changed"
    campaign: str
    level: Literal["unit", "province", "work_region"]
    id: str
    valid: int
    rejected: int
    test: int
    as_of: AwareDatetime


Event = Annotated[
    SubmissionReceived | CampaignDefined | LinkRevoked | SubmissionJudged | CountChanged,
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
