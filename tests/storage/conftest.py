"""Stores for the storage tests: chDB always, and the session's ClickHouse server
(`clickhouse_url`, tests/conftest.py: free ports, stopped when the session ends).
Every test gets its own database, dropped afterwards.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from schemas.events import SubmissionJudged
from storage import SqlStore, open_store
from tests.storage.support import drop

RECEIVED_AT = dt.datetime(2023, 9, 14, 2, 10, tzinfo=dt.UTC)  # 10:10 in Shanghai


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One directory for the whole session: chDB serves a single data path per process.
    return tmp_path_factory.mktemp("chdb")


def _database_url(kind: str, request: pytest.FixtureRequest, chdb_dir: Path) -> str:
    database = f"t_{uuid.uuid4().hex[:16]}"
    if kind == "chdb":
        return f"chdb://{chdb_dir}?database={database}"
    return with_database(request.getfixturevalue("clickhouse_url"), database)


ADAPTERS = ["chdb", pytest.param("clickhouse", marks=pytest.mark.integration)]


@pytest.fixture(params=ADAPTERS)
def store_url(request: pytest.FixtureRequest, chdb_dir: Path) -> Iterator[str]:
    """A URL of an empty database on one adapter (dropped after the test)."""
    url = _database_url(request.param, request, chdb_dir)
    yield url
    with open_store(url) as store:
        drop(store)


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    """A migrated store on an empty database."""
    with open_store(store_url) as store:
        store.migrate()
        yield store


@pytest.fixture(scope="module", params=ADAPTERS)
def engine(request: pytest.FixtureRequest, chdb_dir: Path) -> Iterator[SqlStore]:
    """A store shared by a module's tests that only run queries (hypothesis needs it wider
    than one example)."""
    url = _database_url(request.param, request, chdb_dir)
    with open_store(url) as store:
        yield store
        drop(store)


def _judged(i: int = 0, **fields: Any) -> SubmissionJudged:
    values: dict[str, Any] = {
        "submission_id": f"00000000-0000-4000-8000-{i:012d}",
        "campaign": "2023",
        "fingerprint": f"fp{i}",
        "source_position": f"0:{i}",
        "received_at": RECEIVED_AT + dt.timedelta(seconds=i),
        "status": "accepted",
        "rules_version": "r1",
        "phase": "collection",
        "link_code": "Gd7kQ2xP",
        "unit": "gd-cyber",
        "province": "44",
        "work_region": "south",
        "channel": "wechat",
        "questionnaire_version": "2023.1",
        "respondent_province": "44",
        "respondent_city": "4401",
        "age_group": "25-34",
        "started_at": RECEIVED_AT - dt.timedelta(minutes=9),
        "submitted_at": RECEIVED_AT - dt.timedelta(seconds=2),
        "duration_seconds": 538.25,
        "device_hash": f"dev{i}",
        "client": "c1",
        "answers_json": '{"q1": 4, "q2": "b"}',
        "opinion": "",
    }
    values.update(fields)
    return SubmissionJudged(**values)


@pytest.fixture(scope="session")
def judged() -> Callable[..., SubmissionJudged]:
    """Builds a verdict: `judged(i, **overrides)`; distinct i give distinct ids and devices."""
    return _judged
