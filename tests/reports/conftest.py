"""One report over 55,000+ judged answer sheets in a chDB store, built once per module.

The store is an embedded data directory (data/chdb plus the registry file log), so the CLI
can be run on it too. Under CI a missing tool (pdftoppm, a CJK font) fails; elsewhere it skips.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from core.registry import Registry
from eventlog.file_log import FileLog
from reports.build import build_report_from_store
from reports.model import ReportData
from reports.queries import Scope
from reports.render import Written, write_report
from schemas.campaign import CampaignDefinition
from schemas.events import CampaignDefined, SubmissionJudged, encode_event
from storage.chdb_store import ChdbStore
from tests import helpers
from tests.reports.support import example_definition, judged_rows, registry_for, with_topics

SHEETS = 60_000  # judged into ~59,000 stored verdicts (identical resends are absorbed)
INSERT_BATCH = 10_000


def unavailable(reason: str) -> NoReturn:
    helpers.unavailable(f"{reason} (run infra/reports/install.sh)")


@dataclass
class Built:
    data_dir: Path
    definition: CampaignDefinition
    registry: Registry
    rows: list[SubmissionJudged]
    data: ReportData
    written: Written
    seconds: dict[str, float]


@pytest.fixture(scope="session")  # ~35 s to judge, store and render: once per session
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    data_dir = tmp_path_factory.mktemp("report-data")
    definition = with_topics(example_definition())
    registry = registry_for(definition)
    seconds: dict[str, float] = {}

    t = time.monotonic()
    rows = list(judged_rows(definition, registry, SHEETS))
    seconds["judge"] = time.monotonic() - t

    # The registry as the embedded runtime keeps it, for the CLI test.
    log = FileLog(data_dir / "registry", fsync=False)
    event = CampaignDefined(campaign=definition.campaign, definition=definition,
                            defined_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    asyncio.run(log.append(definition.campaign.encode(), encode_event(event)))
    log.close()

    t = time.monotonic()
    store = ChdbStore(data_dir / "chdb")
    try:
        store.migrate()
        for start in range(0, len(rows), INSERT_BATCH):
            store.insert_judged(rows[start:start + INSERT_BATCH])
        seconds["insert"] = time.monotonic() - t
        t = time.monotonic()
        state = registry.get(definition.campaign)
        assert state is not None
        data = build_report_from_store(store, state, Scope(definition.campaign))
        seconds["build"] = time.monotonic() - t
    finally:
        store.close()  # closed before the CLI test's own process opens the same directory
    t = time.monotonic()
    written = write_report(data, data_dir / "out")
    seconds["render"] = time.monotonic() - t
    print(f"report at {len(rows)} verdicts: " + ", ".join(
        f"{k} {v:.1f} s" for k, v in seconds.items()))
    yield Built(data_dir, definition, registry, rows, data, written, seconds)
