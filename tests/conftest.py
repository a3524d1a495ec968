"""Session fixtures: the real Kafka broker and ClickHouse server, started once per test session.

Each service is started by its infra/ script (which installs it when missing) with a bounded
wait, on free ports of its own (a `make stack` or another test session is left alone), and
stopped, its data wiped, when the session ends. Under CI=true a service that cannot start fails
the tests that need it; elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import unavailable
from tests.integration.distributed_stack import Stack

ROOT = Path(__file__).resolve().parents[1]


SERVICE_MARKERS = ("integration", "browser")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """I/O is opt-in: a test that declares a service (a marker above) may open sockets; every
    other test has them blocked (pytest-socket), so it can never quietly become an integration
    test."""
    for item in items:
        if any(item.get_closest_marker(m) for m in SERVICE_MARKERS):
            item.add_marker(pytest.mark.enable_socket)


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


# Every session runs servers of its own, on free ports (override with SURVEY_TEST_*): two
# sessions on one machine never stop or wipe each other's broker mid-run.
KAFKA_PORT = os.environ.get("SURVEY_TEST_KAFKA_PORT") or _free_port()
KAFKA_CONTROLLER_PORT = os.environ.get("SURVEY_TEST_KAFKA_CONTROLLER_PORT") or _free_port()
CLICKHOUSE_TCP_PORT = os.environ.get("SURVEY_TEST_CLICKHOUSE_TCP_PORT") or _free_port()
CLICKHOUSE_HTTP_PORT = os.environ.get("SURVEY_TEST_CLICKHOUSE_HTTP_PORT") or _free_port()
# Bounds: a first run also installs (Maven fetch of the Kafka jars, apt for ClickHouse).
START_TIMEOUT_S = 600
STOP_TIMEOUT_S = 120
WIPE_TIMEOUT_S = 600

SERVICE_ENV = {
    "SURVEY_KAFKA_PORT": KAFKA_PORT,
    "SURVEY_KAFKA_CONTROLLER_PORT": KAFKA_CONTROLLER_PORT,
    "SURVEY_CLICKHOUSE_TCP_PORT": CLICKHOUSE_TCP_PORT,
    "SURVEY_CLICKHOUSE_HTTP_PORT": CLICKHOUSE_HTTP_PORT,
    "SURVEY_INFRA_TIMEOUT": "90",
}


def _script(
    service: str, action: str, *args: str, timeout_s: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "infra" / service / f"{action}.sh"), *args],
        env={**os.environ, **SERVICE_ENV}, capture_output=True, text=True, timeout=timeout_s,
    )


def _start(service: str) -> str:
    """The address the start script prints; fails (CI) or skips (elsewhere) if it cannot start."""
    try:
        result = _script(service, "start", timeout_s=START_TIMEOUT_S)
        ok = result.returncode == 0 and bool(result.stdout.strip())
        why = f"exit {result.returncode}:\n{result.stderr[-3000:]}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        ok, why = False, str(exc)
    if not ok:
        message = f"{service} could not be started by infra/{service}/start.sh: {why}"
        unavailable(message)
    return result.stdout.strip().splitlines()[-1]


def _stop(service: str) -> None:
    # First the stop (the script SIGKILLs after SURVEY_INFRA_TIMEOUT), then the wipe on its own
    # longer bound: deleting every test database's files once took over two minutes on a loaded
    # 2-core box, and must not be what fails a session whose server is already down.
    for args, timeout_s in (((), STOP_TIMEOUT_S), (("--wipe",), WIPE_TIMEOUT_S)):
        try:
            result = _script(service, "stop", *args, timeout_s=timeout_s)
        except subprocess.TimeoutExpired:
            print(f"infra/{service}/stop.sh {' '.join(args)} ran past {timeout_s} s")
            continue
        if result.returncode != 0:
            print(f"infra/{service}/stop.sh {' '.join(args)} failed: {result.stderr[-2000:]}")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """host:port of a single-node KRaft broker for this session."""
    address = _start("kafka")
    try:
        yield address
    finally:
        _stop("kafka")


@pytest.fixture(scope="session")
def clickhouse_url() -> Iterator[str]:
    """clickhouse://host:port/default; tests name a database of their own under it."""
    address = _start("clickhouse")
    try:
        yield f"{address}/default"
    finally:
        _stop("clickhouse")


@pytest.fixture(scope="module")
def new_stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Stack]]:
    """Makes a distributed Stack (not started) on its own topic prefix and database, on this
    session's broker and server, or on the `kafka` bootstrap or `clickhouse` URL given (a fault
    test's own: the session's are then not started for it); stops every one it made when the
    module ends."""
    made: list[Stack] = []

    def make(*, kafka: str | None = None, clickhouse: str | None = None, **env: str) -> Stack:
        stack = Stack(kafka or request.getfixturevalue("kafka_bootstrap"),
                      clickhouse or request.getfixturevalue("clickhouse_url"),
                      tmp_path_factory.mktemp("stack"), **env)
        made.append(stack)
        return stack

    yield make
    for stack in made:
        stack.stop()
