"""Keyed hashes for identifiers and masking of personal numbers in free text."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
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


def network_prefix(address: str) -> str:
    """The network an address belongs to: its /24 (IPv4) or /48 (IPv6), as text; "" if the
    address is not an IP address. Only ever stored as a keyed hash, like the address itself."""
    if address.count(".") == 3 and ":" not in address:
        head, _, last = address.rpartition(".")
        if last.isdigit():  # the common case, without building an address object
            return head + ".0/24"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return network_prefix(str(ip.ipv4_mapped))
        return str(ipaddress.ip_network(f"{ip}/48", strict=False))
    return str(ipaddress.ip_network(f"{ip}/24", strict=False))


# Any of the three patterns, for the cheap "is there anything to mask" check.
_ANY_PERSONAL = re.compile("|".join(p.pattern for p in (_ID_CARD, _PHONE, _LANDLINE)))
# Envelope fields that identify the sheet (never free text); every other string is screened.
IDENTITY_FIELDS = frozenset(
    {"submission_id", "campaign", "link_code", "questionnaire_version", "started_at",
     "submitted_at", "device_id"}
)


def holds_personal_numbers(value: object) -> bool:
    """Whether a string anywhere in this JSON value (keys aside) holds a personal number."""
    # A loop, not recursion: the collector runs this on every sheet.
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            # The shortest number masked (a landline, 0xx + 7 digits) has 10 characters.
            if len(item) >= 10 and _ANY_PERSONAL.search(item) is not None:
                return True
        elif isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, list | tuple):
            todo.extend(item)
    return False


def _masked(value: object) -> object:
    if isinstance(value, str):
        return mask_personal_numbers(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def mask_free_text(body: dict[str, object]) -> dict[str, object]:
    """The answer sheet with personal numbers masked in every string outside IDENTITY_FIELDS
    (opinion, answers, respondent, anything extra): what the collector appends to the raw log.
    The collector cannot tell a text question from a choice here (it does not judge), and option
    codes never look like phone or ID numbers. Deterministic and idempotent, so an identical
    resend is logged identically and keeps its fingerprint."""
    return {k: v if k in IDENTITY_FIELDS else _masked(v) for k, v in body.items()}
