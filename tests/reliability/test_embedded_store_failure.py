"""The embedded processor when its store fails an insert: the batch is judged again from what the
store holds, so nothing judged but not stored is lost (it used to come back as a "resend")."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from core.registry import Registry
from eventlog.file_log import FileLog
from eventlog.offsets import OffsetStore
from schemas.campaign import CampaignDefinition
from schemas.events import CampaignDefined, SubmissionJudged, SubmissionReceived, encode_event
from storage import SqlStore, open_store
from stream_processors.embedded import EmbeddedProcessor
from tests.helpers import campaign_definition, sheet

CAMPAIGN = "store-failure"


class FailingOnce:
    """The real chDB store, except that its next insert of verdicts raises (a full disk, say)."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store
        self.fail_next = True

    def insert_judged(self, rows: Sequence[SubmissionJudged]) -> int:
        if self.fail_next:
            self.fail_next = False
            raise OSError("no space left on device")
        return self._store.insert_judged(rows)

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    with open_store(f"chdb://{tmp_path / 'chdb'}") as store:
        store.migrate()
        yield store


def test_a_batch_whose_insert_failed_is_stored_on_the_retry(
    tmp_path: Path, store: SqlStore
) -> None:
    registry = Registry()
    definition = CampaignDefinition.model_validate(campaign_definition(CAMPAIGN))
    registry.apply(CampaignDefined(
        campaign=CAMPAIGN, defined_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
        definition=definition,
    ))
    raw = FileLog(tmp_path / "raw", fsync=False)
    now = dt.datetime.now(dt.UTC)
    sheets = [sheet(CAMPAIGN) for _ in range(40)]
    raw.append_many_sync(
        (s["submission_id"].encode(), encode_event(SubmissionReceived(received_at=now, body=s)))
        for s in sheets
    )
    failing = FailingOnce(store)
    processor = EmbeddedProcessor(
        raw, OffsetStore(tmp_path / "offsets.json"), failing,  # type: ignore[arg-type]
        registry, hash_key="k", batch_rows=1000,
    )
    with pytest.raises(OSError):
        processor.process_batch()
    assert processor.position == 0  # nothing committed
    assert processor.process_batch() == len(sheets)
    counts = store.exact_unit_counts(CAMPAIGN)
    assert sum(c.valid for c in counts.values()) == len(sheets)
    for s in sheets:
        status = store.submission_status(CAMPAIGN, s["submission_id"])
        assert status is not None and status.status == "accepted", s["submission_id"]
    raw.close()
