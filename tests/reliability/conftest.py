"""Fixtures of the reliability tests: stacks of `survey-ingest` roles on the session's services.

The services a fault test breaks are its own (tests.reliability.support.DedicatedService); the
session's Kafka and ClickHouse (tests/conftest.py) serve the tests that break nothing of theirs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.integration.distributed_stack import Stack
from tests.reliability.support import make_stack


@pytest.fixture(scope="module")
def new_stack(
    kafka_bootstrap: str, clickhouse_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Stack]]:
    """Makes a Stack (not started) on its own topic prefix and database; stops all at the end."""
    made: list[Stack] = []

    def make(**env: str) -> Stack:
        stack = make_stack(kafka_bootstrap, clickhouse_url, tmp_path_factory.mktemp("stack"), **env)
        made.append(stack)
        return stack

    yield make
    for stack in made:
        stack.stop()
