"""A peer that is not a trusted proxy cannot choose its own address with X-Forwarded-For.

Through a real `survey-ingest serve`: uvicorn, left to itself, rewrites the client address from
X-Forwarded-For for peers on 127.0.0.1 before the collector's own trusted-proxy check sees it.
(The distributed collector is covered in tests/integration/test_distributed_collector_workers.py.)
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import campaign_definition, sheet
from tests.integration.embedded_server import EmbeddedServer

# Real servers on loopback: sockets allowed (tests/conftest.py).
pytestmark = pytest.mark.integration

CAMPAIGN = "proxy-2026"


@pytest.fixture(scope="module")
def untrusting_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    env = {"SURVEY_RATE_LIMIT_PER_IP": "0.01", "SURVEY_TRUSTED_PROXIES": "[]"}
    srv = EmbeddedServer(tmp_path_factory.mktemp("proxy") / "data", env=env).start()
    try:
        assert srv.define(campaign_definition(CAMPAIGN)).status_code == 200
        yield srv
    finally:
        srv.kill()


def test_forwarded_for_from_an_untrusted_local_peer_does_not_dodge_the_ip_limit(
    untrusting_server: EmbeddedServer,
) -> None:
    codes = [
        httpx.post(f"{untrusting_server.base}/v1/submissions", json=sheet(CAMPAIGN),
                   headers={"x-forwarded-for": f"203.0.113.{i}"}, timeout=10).status_code
        for i in range(1, 6)
    ]
    # Every request is from 127.0.0.1: a burst of one, then 429 (0.01/s refills in 100 s).
    assert codes == [202, 429, 429, 429, 429], codes
