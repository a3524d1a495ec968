"""One real `survey-ingest serve` for the security tests, with every abuse control switched on;
and one of each runtime for the access tests.

Rate limits are keyed so tests do not disturb each other: each test uses its own client
addresses (sent through the trusted proxy, 127.0.0.1, as X-Forwarded-For) and its own link codes
(a link code need not be known for the edge to take the sheet).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import campaign_definition
from tests.integration.distributed_stack import Stack
from tests.integration.embedded_server import EmbeddedServer
from tests.security.support import ACCESS_ENV, CAMPAIGN, SECURITY_ENV, Runtime


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    srv = EmbeddedServer(tmp_path_factory.mktemp("security") / "data", env=SECURITY_ENV).start()
    try:
        response = srv.define(campaign_definition(CAMPAIGN))
        assert response.status_code == 200, response.text
        yield srv
    finally:
        srv.kill()


@pytest.fixture(scope="package", params=["embedded", "distributed"])
def runtime(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Runtime]:
    """One of each runtime shared by the access tests (the matrix, the scope sums), each module
    on campaigns of its own: a serve or a stack started once per runtime, not once per module.
    (Without __init__.py files pytest keeps it to the session's end: the last one stops then.)"""
    if request.param == "embedded":
        srv = EmbeddedServer(tmp_path_factory.mktemp("access") / "data", env=ACCESS_ENV).start()
        try:
            yield Runtime("embedded", srv.base, srv.base,
                          lambda: srv.log_path.read_text(errors="replace"))
        finally:
            srv.stop()
    else:
        stack = Stack(request.getfixturevalue("kafka_bootstrap"),
                      request.getfixturevalue("clickhouse_url"),
                      tmp_path_factory.mktemp("access-stack"), **ACCESS_ENV)
        try:
            yield Runtime("distributed", stack.start().collector_url, stack.api_url,
                          lambda: "\n".join(p.read_text(errors="replace")
                                            for p in stack.workdir.glob("*.log")))
        finally:
            stack.stop()
