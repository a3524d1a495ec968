"""One real `survey-ingest serve` for the security tests, with every abuse control switched on.

Rate limits are keyed so tests do not disturb each other: each test uses its own client
addresses (sent through the trusted proxy, 127.0.0.1, as X-Forwarded-For) and its own link codes
(a link code need not be known for the edge to take the sheet).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import campaign_definition
from tests.integration.embedded_server import EmbeddedServer
from tests.security.support import CAMPAIGN, SECURITY_ENV


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    srv = EmbeddedServer(tmp_path_factory.mktemp("security") / "data", env=SECURITY_ENV).start()
    try:
        response = srv.define(campaign_definition(CAMPAIGN))
        assert response.status_code == 200, response.text
        yield srv
    finally:
        srv.kill()
