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
