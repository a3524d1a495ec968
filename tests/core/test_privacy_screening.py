"""Privacy by default: personal numbers masked in free text, identifiers only as keyed hashes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.privacy import keyed_hash, mask_personal_numbers

PERSONAL_NUMBERS = [
    "13812345678",
    "+86 13812345678",
    "86-13812345678",
    "138-1234-5678",
    "138 1234 5678",
    "11010519491231002X",
    "44010620001231123x",
    "440106200012311234",
    "020-12345678",
    "0755-1234567",
]


@pytest.mark.parametrize("number", PERSONAL_NUMBERS)
def test_personal_number_in_text_is_masked(number: str) -> None:
    text = f"请联系我{number}谢谢"
    masked = mask_personal_numbers(text)
    assert number not in masked
    assert masked == f"请联系我{'*' * len(number)}谢谢"


@pytest.mark.parametrize(
    "text",
    [
        "2023年的调查很好，打5分",
        "邮编 510000",
        "订单号 12345",
        "1381234567",  # ten digits: not a mobile number
        "138123456789",  # twelve digits
        "https://example.cn/a/12",
    ],
)
def test_ordinary_numbers_are_left_alone(text: str) -> None:
    assert mask_personal_numbers(text) == text


def test_opinion_and_text_answers_are_masked_before_storage(make_submission, judge_one) -> None:
    judged = judge_one(make_submission(
        opinion="希望加强个人信息保护，联系我 13812345678",
        answers={"q4": "身份证 11010519491231002X 被泄露"},
    ))
    assert judged.opinion == "希望加强个人信息保护，联系我 " + "*" * 11
    assert json.loads(judged.answers_json)["q4"] == "身份证 " + "*" * 18 + " 被泄露"
    stored = judged.model_dump_json()
    assert "13812345678" not in stored
    assert "11010519491231002X" not in stored


def test_masking_does_not_change_the_verdict(make_submission, judge_one) -> None:
    judged = judge_one(make_submission(answers={"q4": "电话 13812345678"}))
    assert (judged.status, judged.reasons) == ("accepted", ())


def test_device_id_and_client_are_stored_only_as_keyed_hashes(
    make_submission, judge_one, hash_key
) -> None:
    client_hash = keyed_hash(hash_key, "203.0.113.9")
    judged = judge_one(make_submission(device_id="my-phone-id-123", client=client_hash))
    assert judged.device_hash == keyed_hash(hash_key, "my-phone-id-123")
    assert judged.device_hash != "my-phone-id-123"
    stored = judged.model_dump_json()
    assert "my-phone-id-123" not in stored
    assert "203.0.113.9" not in stored


def test_keyed_hash_depends_on_the_key() -> None:
    assert keyed_hash("k1", "device") == keyed_hash("k1", "device")
    assert keyed_hash("k1", "device") != keyed_hash("k2", "device")
    assert keyed_hash("k1", "device") != keyed_hash("k1", "device2")


def test_keyed_hash_of_nothing_is_nothing() -> None:
    assert keyed_hash("k1", "") == ""


@settings(max_examples=200, deadline=None)
@given(key=st.text(min_size=1, max_size=20), value=st.text(min_size=1, max_size=64))
def test_keyed_hash_never_equals_the_raw_value(key: str, value: str) -> None:
    hashed = keyed_hash(key, value)
    assert hashed != value
    assert len(hashed) == 32


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789Xx +-", max_size=40))
def test_masking_keeps_the_length_and_only_hides(text: str) -> None:
    masked = mask_personal_numbers(text)
    assert len(masked) == len(text)
    assert all(m == t or m == "*" for m, t in zip(masked, text, strict=True))
