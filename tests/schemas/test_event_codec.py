"""Events on the log: every kind round-trips, and the decoder refuses what it cannot read."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from schemas.campaign import CampaignDefinition
from schemas.events import (
    SCHEMA_VERSION,
    CampaignDefined,
    CountChanged,
    LinkRevoked,
    SubmissionJudged,
    SubmissionReceived,
    UnknownEventError,
    decode_event,
    encode_event,
)

AT = dt.datetime(2023, 9, 14, 2, 10, 0, 123456, tzinfo=dt.UTC)
SHANGHAI = dt.timezone(dt.timedelta(hours=8))

DEFINITION = CampaignDefinition.model_validate({
    "campaign": "2023",
    "phases": [{"name": "collection", "start": "2023-09-13", "end": "2023-09-22",
                "counts": True}],
    "work_regions": [{"id": "south", "name": "华南"}],
    "provinces": [{"id": "44", "name": "广东", "work_region": "south",
                   "internet_users": 105_000_000, "target_rate": 0.01}],
    "units": [{"id": "gd-cyber", "name": "广东省网络空间安全协会", "province": "44",
               "planned_samples": 500_000}],
    "links": [{"code": "Gd7kQ2xP", "unit": "gd-cyber", "channel": "wechat", "revoked": True}],
    "questionnaire": {"version": "2023.1", "min_seconds": 60, "questions": [
        {"id": "q1", "type": "scale", "min": 1, "max": 5, "required": True},
        {"id": "q2", "type": "single", "options": ["a", "b"]},
        {"id": "q3", "type": "multi", "options": ["a", "b"], "max_choices": 1},
        {"id": "q4", "type": "text", "max_length": 10},
    ]},
})

EVENTS: list[BaseModel] = [
    SubmissionReceived(
        received_at=AT,
        client="0f" * 16,
        body={"submission_id": "sub-000001", "answers": {"q1": 4, "q3": ["a"], "q4": "中文"},
              "opinion": None, "nested": {"deep": [1, 2.5, True]}},
    ),
    CampaignDefined(campaign="2023", defined_at=AT, definition=DEFINITION),
    LinkRevoked(campaign="2023", link_code="Gd7kQ2xP", revoked_at=AT.astimezone(SHANGHAI)),
    SubmissionJudged(
        submission_id="sub-000001", campaign="2023", fingerprint="ab" * 16,
        source_position="3:1234", received_at=AT, status="rejected",
        reasons=("too_fast", "straight_lining"), rules_version="2026.1", phase="collection",
        link_code="Gd7kQ2xP", unit="gd-cyber", province="44", work_region="south",
        started_at=AT - dt.timedelta(seconds=30), submitted_at=AT, duration_seconds=30.0,
        device_hash="cd" * 16, answers_json='{"q1": 4}', opinion="***", first_of_id=False,
    ),
    CountChanged(campaign="2023", level="province", id="44", valid=10, rejected=2, test=1,
                 as_of=AT),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_every_event_kind_round_trips(event: BaseModel) -> None:
    encoded = encode_event(event)
    decoded = decode_event(encoded)
    assert type(decoded) is type(event)
    assert decoded == event
    assert decode_event(encoded.decode()) == event
    assert encode_event(decoded) == encoded


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_encoded_event_carries_its_kind_and_schema_version(event: BaseModel) -> None:
    raw = json.loads(encode_event(event))
    assert raw["v"] == SCHEMA_VERSION
    assert raw["kind"] == event.kind  # type: ignore[attr-defined]


def _raw_link_revoked(**changes: Any) -> dict[str, Any]:
    raw = json.loads(encode_event(EVENTS[2]))
    raw.update(changes)
    return raw


@pytest.mark.parametrize("version", [0, 2, 99, None, "1", "2"])
def test_unknown_schema_version_is_refused_loudly(version: Any) -> None:
    with pytest.raises(UnknownEventError, match="schema version"):
        decode_event(json.dumps(_raw_link_revoked(v=version)))


def test_event_without_schema_version_is_refused() -> None:
    raw = _raw_link_revoked()
    del raw["v"]
    with pytest.raises(UnknownEventError, match="schema version"):
        decode_event(json.dumps(raw))


@pytest.mark.parametrize("kind", ["link.unrevoked", "submission", "", None])
def test_unknown_kind_is_refused_loudly(kind: Any) -> None:
    with pytest.raises(UnknownEventError):
        decode_event(json.dumps(_raw_link_revoked(kind=kind)))


def test_event_without_kind_is_refused() -> None:
    raw = _raw_link_revoked()
    del raw["kind"]
    with pytest.raises(UnknownEventError):
        decode_event(json.dumps(raw))


@pytest.mark.parametrize(
    "data",
    [b"not json", b"\xff\xfe", "[1, 2]", "42", "null"],
    ids=["text", "bytes", "list", "number", "null"],
)
def test_what_is_not_a_json_object_is_refused(data: bytes | str) -> None:
    with pytest.raises(UnknownEventError):
        decode_event(data)


def test_event_with_a_field_it_does_not_know_is_refused() -> None:
    with pytest.raises(UnknownEventError, match="does not match its schema"):
        decode_event(json.dumps(_raw_link_revoked(surprise=True)))


def test_event_with_a_field_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(UnknownEventError):
        decode_event(json.dumps(_raw_link_revoked(revoked_at="not a time")))


def test_unknown_event_error_is_a_value_error() -> None:
    assert issubclass(UnknownEventError, ValueError)


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_events_are_frozen(event: BaseModel) -> None:
    with pytest.raises(ValidationError):
        event.v = 2  # type: ignore[attr-defined]
