"""The answer-sheet envelope (CONTRACT §2): what the collector accepts before the 202."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.envelope import MAX_BODY_BYTES, SubmissionEnvelope, envelope_field_errors

# CONTRACT §2, verbatim.
CONTRACT_BODY = """\
{"submission_id": "0b6e3f5a-2f7e-4c59-9a39-1d2f0c4e5b6a", "campaign": "2023",
 "link_code": "Gd7kQ2xP", "questionnaire_version": "2023.1",
 "started_at": "2023-09-14T10:01:02+08:00", "submitted_at": "2023-09-14T10:09:40+08:00",
 "respondent": {"province": "44", "city": "4401", "age_group": "25-34"},
 "device_id": "optional opaque id from the answering page",
 "answers": {"q1": 4, "q2": "b", "q3": ["a", "c"], "q4": "free text"},
 "opinion": "optional free-text opinion or suggestion"}
"""

REQUIRED = [
    "submission_id", "campaign", "link_code", "questionnaire_version",
    "started_at", "submitted_at", "answers",
]


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(json.loads(CONTRACT_BODY))
    body.update(changes)
    return body


def _error_locs(body: dict[str, Any]) -> list[tuple[str, ...]]:
    with pytest.raises(ValidationError) as caught:
        SubmissionEnvelope.model_validate(body)
    return [tuple(str(p) for p in e["loc"]) for e in caught.value.errors()]


def test_contract_example_body_is_accepted() -> None:
    env = SubmissionEnvelope.model_validate_json(CONTRACT_BODY)
    assert env.submission_id == "0b6e3f5a-2f7e-4c59-9a39-1d2f0c4e5b6a"
    assert env.campaign == "2023"
    assert env.link_code == "Gd7kQ2xP"
    assert env.started_at.utcoffset() is not None
    assert (env.submitted_at - env.started_at).total_seconds() == 8 * 60 + 38
    assert env.respondent.province == "44"
    assert env.answers == {"q1": 4, "q2": "b", "q3": ["a", "c"], "q4": "free text"}
    assert len(CONTRACT_BODY.encode()) < MAX_BODY_BYTES


def test_body_limit_is_64_kib() -> None:
    assert MAX_BODY_BYTES == 64 * 1024


@pytest.mark.parametrize("field", REQUIRED)
def test_envelope_without_a_required_field_is_refused_naming_it(field: str) -> None:
    body = _body()
    del body[field]
    assert (field,) in _error_locs(body)


@pytest.mark.parametrize("field", ["started_at", "submitted_at"])
def test_naive_datetime_is_refused(field: str) -> None:
    locs = _error_locs(_body(**{field: "2023-09-14T10:01:02"}))
    assert locs == [(field,)]


@pytest.mark.parametrize("field", ["device_id", "opinion", "respondent"])
def test_optional_fields_may_be_left_out(field: str) -> None:
    body = _body()
    del body[field]
    SubmissionEnvelope.model_validate(body)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("submission_id", "short"),
        ("submission_id", "has spaces in it"),
        ("submission_id", "x" * 65),
        ("campaign", ""),
        ("link_code", ""),
        ("started_at", "yesterday"),
        ("answers", ["q1", 4]),
        ("answers", {f"q{i}": 1 for i in range(501)}),
        ("answers", {"q1": {"nested": "object"}}),
        ("opinion", "x" * 10_001),
        ("device_id", "d" * 257),
    ],
    ids=lambda v: str(v)[:20],
)
def test_envelope_field_out_of_bounds_is_refused(field: str, value: Any) -> None:
    locs = _error_locs(_body(**{field: value}))
    assert locs
    assert all(loc[0] == field for loc in locs)


def test_field_errors_are_reduced_to_loc_type_and_msg() -> None:
    body = _body(started_at="2023-09-14T10:01:02")
    del body["campaign"]
    with pytest.raises(ValidationError) as caught:
        SubmissionEnvelope.model_validate(body)
    errors = envelope_field_errors(caught.value.errors())
    assert {tuple(e["loc"]) for e in errors} == {("campaign",), ("started_at",)}
    assert all(set(e) == {"loc", "type", "msg"} and e["msg"] for e in errors)
    json.dumps(errors)  # goes straight into a JSON `detail`


def test_unknown_extra_fields_are_kept_for_the_raw_log() -> None:
    env = SubmissionEnvelope.model_validate(_body(client_version="3.2"))
    assert env.model_extra == {"client_version": "3.2"}
