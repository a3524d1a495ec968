"""Constants and helpers shared by the security tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests import helpers
from tests.integration.embedded_server import EmbeddedServer

CAMPAIGN = "sec-2026"
ALLOWED_ORIGIN = "https://answer.example.cn"
HASH_KEY = "security-test-hash-key"
SECURITY_ENV = {
    "SURVEY_RATE_LIMIT_PER_IP": "1",  # burst 2
    "SURVEY_RATE_LIMIT_PER_LINK": "2",  # burst 4
    "SURVEY_TRUSTED_PROXIES": json.dumps(["127.0.0.1"]),
    "SURVEY_CORS_ORIGINS": json.dumps([ALLOWED_ORIGIN]),
    "SURVEY_HASH_KEY": HASH_KEY,
}
# The access tests (every route, role and scope): the failed-auth limit must not trip them.
ACCESS_ENV = {"SURVEY_AUTH_FAILURES_PER_MINUTE": "100000"}


@dataclass(frozen=True)
class Runtime:
    """A running runtime for the access tests: where sheets are posted, where the API answers,
    and its processes' logs so far."""

    name: str  # "embedded" or "distributed"
    collector: str
    api: str
    logs: Callable[[], str]


def status_of(
    server: EmbeddedServer, sid: str, campaign: str = CAMPAIGN, timeout: float = 20
) -> dict[str, Any]:
    """Poll until the submission has a verdict (bounded); a 5xx fails."""
    return helpers.status_of(server, campaign, sid, timeout, fail_on_5xx=True)
