"""Constants and helpers shared by the security tests."""

from __future__ import annotations

import json
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


def status_of(
    server: EmbeddedServer, sid: str, campaign: str = CAMPAIGN, timeout: float = 20
) -> dict[str, Any]:
    """Poll until the submission has a verdict (bounded); a 5xx fails."""
    return helpers.status_of(server, campaign, sid, timeout, fail_on_5xx=True)
