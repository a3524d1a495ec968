"""A collector whose broker is unreachable answers 503 (nothing stored) and never 202."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.helpers import sheet
from tests.integration.distributed_stack import Stack, wait_until
from tests.integration.embedded_server import free_port

pytestmark = pytest.mark.integration


def test_collector_without_broker_answers_503_never_202(new_stack: Callable[..., Stack]) -> None:
    stack = new_stack()
    closed = free_port()  # nothing listens there
    collector = stack.role("collector", "--port", str(stack.collector_port),
                           "--kafka-bootstrap", f"127.0.0.1:{closed}")
    try:
        wait_until("collector up", lambda: collector.check_alive() and _status(
            f"{stack.collector_url}/healthz") == 200, 30)
        assert _status(f"{stack.collector_url}/readyz") == 503
        for _ in range(5):
            r = stack.post(sheet("c-any"))
            assert r.status_code == 503, r.text
            assert "detail" in r.json() and r.headers["retry-after"]
        # An envelope error is still reported as such: the collector is up, only the log is not.
        assert stack.post({"campaign": "c-any"}).status_code == 422
    finally:
        collector.stop()


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0
