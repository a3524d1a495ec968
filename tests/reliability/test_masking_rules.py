"""The rules behind the edge checks, without a server: what the collector masks before the append,
that masking is deterministic and idempotent (resends keep their fingerprint), and that a
non-finite number is refused however the envelope is validated (JSON at the edge, Python objects
when a raw record is judged)."""

from __future__ import annotations

import json
import math
from typing import Any

import pydantic
import pytest

from core.judge import fingerprint
from core.privacy import IDENTITY_FIELDS, holds_personal_numbers, mask_free_text
from ingest.collector import Collector
from schemas.envelope import NON_FINITE_NUMBER, SubmissionEnvelope
from tests.helpers import sheet

PHONE, ID_CARD = "13912345678", "44010619900307123X"


class _NoLog:
    def healthy(self) -> bool:
        return True


def _collector() -> Collector:
    return Collector(_NoLog(), dict, hash_key="k")  # type: ignore[arg-type]


def test_every_string_but_the_identifiers_is_masked() -> None:
    body = sheet("c", opinion=f"call {PHONE}", respondent={"province": "44", "note": [PHONE]},
                 answers={"q1": 4, "q3": ["a", f"x{ID_CARD}"], "q4": {"deep": f"id {ID_CARD}"}},
                 extra={"free": f"tel {PHONE}"})
    body["link_code"] = PHONE  # an identifier: kept as sent (judging calls it an unknown link)
    masked = mask_free_text(body)
    text = json.dumps(masked, ensure_ascii=False)
    assert text.count(PHONE) == 1 and masked["link_code"] == PHONE
    assert ID_CARD not in text
    assert {k: masked[k] for k in IDENTITY_FIELDS if k in body} == {
        k: body[k] for k in IDENTITY_FIELDS if k in body}
    answers = masked["answers"]
    assert isinstance(answers, dict) and answers["q1"] == 4 and answers["q3"][0] == "a"


@pytest.mark.parametrize("text", [
    f"call {PHONE}", f"+86 139-1234-5678 or {ID_CARD.lower()}", "020-12345678",
    "no number here", "订单号 12345", "",
])
def test_masking_is_deterministic_idempotent_and_matches_the_check(text: str) -> None:
    body = sheet("c", opinion=text, answers={"q1": 4, "q4": text})
    once = mask_free_text(body)
    assert mask_free_text(body) == once  # deterministic
    assert mask_free_text(once) == once  # idempotent: a masked sheet resent is unchanged
    # Identity fields are never screened (a random uuid can hold a landline-shaped run of digits).
    free = {k: v for k, v in body.items() if k not in IDENTITY_FIELDS}
    assert holds_personal_numbers(free) == (once != body)
    assert not holds_personal_numbers({k: v for k, v in once.items() if k not in IDENTITY_FIELDS})
    assert fingerprint(mask_free_text(body)) == fingerprint(once)


def _through_collector(body: dict[str, Any], **dumps: Any) -> bytes:
    raw = json.dumps(body, **dumps).encode()
    envelope = SubmissionEnvelope.__pydantic_validator__.validate_json(raw)
    return _collector()._mask_personal_numbers(raw, envelope)


def test_the_collector_leaves_a_sheet_without_numbers_byte_for_byte() -> None:
    body = sheet("c", opinion="没有号码")
    raw = json.dumps(body, ensure_ascii=False).encode()
    envelope = SubmissionEnvelope.__pydantic_validator__.validate_json(raw)
    assert _collector()._mask_personal_numbers(raw, envelope) is raw


def test_identical_resends_are_logged_identically_however_they_are_encoded() -> None:
    body = sheet("c", opinion=f"电话 {PHONE}", answers={"q1": 4, "q4": f"证件 {ID_CARD}"})
    logged = {_through_collector(body, ensure_ascii=True),
              _through_collector(body, ensure_ascii=False),
              _through_collector(body, ensure_ascii=False, indent=2)}
    assert len(logged) == 1
    (one,) = logged
    assert PHONE.encode() not in one and ID_CARD.encode() not in one
    assert "电话".encode() in one  # readable UTF-8, not \\u escapes


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 10**400])
@pytest.mark.parametrize("where", ["answers", "respondent", "extra"])
def test_non_finite_numbers_are_refused_in_python_mode_too(value: Any, where: str) -> None:
    """A raw record from before this check is judged through model_validate: refused there too,
    so judging rejects it (invalid_answer) instead of storing an infinity."""
    body = sheet("c")
    if where == "answers":
        body["answers"]["s1"] = value
    elif where == "respondent":
        body["respondent"]["x"] = [1, value]
    else:
        body["meta"] = {"n": value}
    with pytest.raises(pydantic.ValidationError) as caught:
        SubmissionEnvelope.model_validate(body)
    assert [e["type"] for e in caught.value.errors()] == [NON_FINITE_NUMBER]
