"""The fault tests' own Kafka broker, shared by the modules that stop or freeze theirs.

Starting a broker costs ~10 s and stopping and wiping it ~5 s more on a 2-core box: the modules
share one (each on its own topic prefix, database and campaign) instead of starting one each.
Each module hands it back running and answering, whatever its fault left. (tests/ has no
__init__.py files, so pytest keeps a package-scoped fixture until the session ends: the broker
idles until then, and every session fixture stops what it started.)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reliability.support import DedicatedService


@pytest.fixture(scope="package")
def shared_broker() -> Iterator[DedicatedService]:
    kafka = DedicatedService("kafka")
    kafka.start_or_skip()
    try:
        yield kafka
    finally:
        kafka.thaw()  # a frozen JVM would not stop
        kafka.stop(wipe=True)


@pytest.fixture(scope="module")
def broker(shared_broker: DedicatedService) -> Iterator[DedicatedService]:
    """A Kafka broker this module may stop, start and freeze (SIGSTOP); no other test uses it
    meanwhile. When the module ends it is thawed and started again if it was stopped, for the
    next module."""
    yield shared_broker
    shared_broker.thaw()
    shared_broker.start()  # running: only waits until it answers
