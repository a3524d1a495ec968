"""Fixtures for the scale-out tests: stacks of role processes on the session's Kafka/ClickHouse."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.integration.distributed_stack import Stack


@pytest.fixture(scope="session")
def scaleout_stack(
    kafka_bootstrap: str, clickhouse_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Stack]]:
    """Makes a Stack (not started) on its own topic prefix and database; stops all at the end."""
    made: list[Stack] = []

    def make(clickhouse: str | None = None, **env: str) -> Stack:
        """`clickhouse`: another server than the session's (clickhouse://host:port/default)."""
        workdir = tmp_path_factory.mktemp("scaleout")
        # The worker's faust data lives under the data dir, which must exist: one per stack.
        stack = Stack(kafka_bootstrap, clickhouse or clickhouse_url, workdir,
                      **{"SURVEY_DATA_DIR": str(workdir), **env})
        made.append(stack)
        return stack

    yield make
    for stack in made:
        stack.stop()
