"""Fixtures for the distributed integration tests: stacks of `survey-ingest` role processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.integration.distributed_stack import Stack


@pytest.fixture(scope="session")
def new_stack(
    kafka_bootstrap: str, clickhouse_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Stack]]:
    """Makes a Stack (not started) on its own topic prefix and database; stops all at the end."""
    made: list[Stack] = []

    def make(**env: str) -> Stack:
        stack = Stack(kafka_bootstrap, clickhouse_url, tmp_path_factory.mktemp("stack"), **env)
        made.append(stack)
        return stack

    yield make
    for stack in made:
        stack.stop()
