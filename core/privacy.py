"""Keyed hashes for identifiers and masking of personal numbers in free text."""

from __future__ import annotations

import hashlib
import hmac
import re

# Mainland mobile numbers, and 18-digit resident ID numbers (last character may be X).
_ID_CARD = re.compile(
    r"(?<![0-9])[1-9][0-9]{5}(?:18|19|20)[0-9]{2}[01][0-9][0-3][0-9]{4}[0-9Xx](?![0-9])"
)
_PHONE = re.compile(r"(?<![0-9])(?:\+?86[- ]?)?1[3-9][0-9](?:[- ]?[0-9]{4}){2}(?![0-9])")
_LANDLINE = re.compile(r"(?<![0-9])0[1-9][0-9]{1,2}-?[0-9]{7,8}(?![0-9])")


def keyed_hash(key: str, value: str) -> str:
    if not value:
        return ""
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()[:32]


def mask_personal_numbers(text: str) -> str:
    text = _ID_CARD.sub(lambda m: "*" * len(m.group()), text)
    text = _PHONE.sub(lambda m: "*" * len(m.group()), text)
    return _LANDLINE.sub(lambda m: "*" * len(m.group()), text)
