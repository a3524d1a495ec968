"""The device id is replaced by its keyed hash before the log: in place, or by re-encoding.

Either way the logged document must be the posted one with only the top-level device_id changed.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from core.judge import DEVICE_HASH_PREFIX
from core.privacy import keyed_hash
from ingest.collector import Collector, _splice_device_id
from schemas.envelope import SubmissionEnvelope

HASH_KEY = "device-id-test-key"
_ENVELOPE = SubmissionEnvelope.__pydantic_validator__


class _NoLog:
    def healthy(self) -> bool:
        return True


COLLECTOR = Collector(_NoLog(), dict, hash_key=HASH_KEY)  # type: ignore[arg-type]
BASE: dict[str, Any] = {
    "submission_id": "abcdefgh-1234", "campaign": "c1", "link_code": "Gd7kQ2xP",
    "questionnaire_version": "2023.1", "started_at": "2026-09-14T10:01:02+08:00",
    "submitted_at": "2026-09-14T10:09:40+08:00", "answers": {"q1": 4, "q4": "free text"},
}
TRICKY = ["device_id", '"device_id"', '"device_id": "x"', "\\", '"', "设备", "\\u0041", " "]


def _logged(body: bytes) -> dict[str, Any]:
    device_id = _ENVELOPE.validate_json(body).device_id
    assert device_id
    return dict(json.loads(COLLECTOR._hash_device_id(body, device_id)))


def _expected(body: bytes) -> dict[str, Any]:
    doc = json.loads(body)
    doc["device_id"] = DEVICE_HASH_PREFIX + keyed_hash(HASH_KEY, doc["device_id"])
    return dict(doc)


def test_a_plain_compact_body_is_changed_in_place_only_at_the_device_id() -> None:
    body = json.dumps({**BASE, "device_id": "dev-123", "opinion": "意见"},
                      ensure_ascii=False, separators=(",", ":")).encode()
    hashed = DEVICE_HASH_PREFIX + keyed_hash(HASH_KEY, "dev-123")
    out = _splice_device_id(body, "dev-123", hashed)
    assert out == body.replace(b'"dev-123"', b'"' + hashed.encode() + b'"')


def test_spacing_around_the_colon_is_kept() -> None:
    body = b'{"device_id" :\t "dev-1" ,' + json.dumps(BASE).encode()[1:]
    assert _splice_device_id(body, "dev-1", "h:x") == body.replace(b'"dev-1"', b'"h:x"')


def test_ambiguous_bodies_are_re_encoded_not_spliced() -> None:
    cases = [
        {**BASE, "answers": {"device_id": "dev-1"}, "device_id": "dev-1"},  # nested key too
        {**BASE, "device_id": "设备"},  # \\u escapes (ensure_ascii)
        {**BASE, "device_id": 'a"b'},
        {**BASE, "device_id": "a\\b"},
    ]
    for doc in cases:
        body = json.dumps(doc).encode()
        assert _splice_device_id(body, doc["device_id"], "h:x") is None
        assert _logged(body) == _expected(body)
    duplicate = json.dumps(BASE).encode()[:-1] + b',"device_id":"a","device_id":"b"}'
    assert _splice_device_id(duplicate, "b", "h:x") is None
    assert _logged(duplicate)["device_id"] == DEVICE_HASH_PREFIX + keyed_hash(HASH_KEY, "b")


_text = st.lists(st.sampled_from([*TRICKY, "a", "b", "1", ":", ",", "{", "}"]), max_size=6).map(
    "".join
)


@settings(max_examples=300, deadline=None)
@given(
    device_id=_text.filter(bool),
    opinion=_text,
    answer=_text,
    extra_key=st.sampled_from(["device_id", "note", "device_id "]),
    ascii_only=st.booleans(),
    spaced=st.booleans(),
)
def test_the_logged_document_differs_from_the_posted_one_only_in_device_id(
    device_id: str, opinion: str, answer: str, extra_key: str, ascii_only: bool, spaced: bool
) -> None:
    doc = {**BASE, "opinion": opinion, "answers": {"q4": answer, extra_key: answer},
           "respondent": {"city": "4401", extra_key: opinion}, "device_id": device_id}
    separators = (", ", ": ") if spaced else (",", ":")
    body = json.dumps(doc, ensure_ascii=ascii_only, separators=separators).encode()
    assert _logged(body) == _expected(body)
