"""The anomaly detectors survive a restart: rebuilt from the stored verdicts of their windows
(network hash included), a restart mid-hour raises the same findings as no restart."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.anomaly import AnomalyEngine
from schemas.events import SubmissionJudged
from storage import SqlStore, open_store
from storage.findings import SqlFindings
from stream_processors import detector_checkpoint
from stream_processors.findings import FindingsStep
from tests.storage.conftest import ADAPTERS, RECEIVED_AT, _database_url
from tests.storage.support import drop

Judged = Callable[..., SubmissionJudged]
KEY = "test-hash-key"
LINKS = [("L1", "u1"), ("L2", "u2"), ("L3", "u3"), ("L4", "u4")]


@pytest.fixture(params=ADAPTERS)
def three(request: pytest.FixtureRequest, chdb_dir: Path) -> Iterator[list[SqlStore]]:
    urls = [_database_url(request.param, request, chdb_dir) for _ in range(3)]
    stores = [open_store(u) for u in urls]
    try:
        for s in stores:
            s.migrate()
        yield stores
    finally:
        for s in stores:
            drop(s)
            s.close()


def stream(judged: Judged) -> list[SubmissionJudged]:
    """Six hours of a quiet campaign, then an hour in which one link gets a run of sheets
    from one network and one device, answering alike."""
    rng = random.Random(7)
    out = []
    i = 0
    for minute in range(0, 6 * 60, 2):
        for code, unit in LINKS:
            i += 1
            out.append(judged(i, link_code=code, unit=unit, network=f"net{i}",
                              received_at=RECEIVED_AT + dt.timedelta(minutes=minute),
                              source_position=f"0:{i}",
                              answers_json=f'{{"q1": {rng.randint(1, 5)}, '
                                           f'"q2": "{rng.choice("abc")}"}}'))
    for k in range(60):
        i += 1
        out.append(judged(i, link_code="L1", unit="u1", network="netX",
                          device_hash="devX" if k % 2 else f"dev{i}",
                          received_at=RECEIVED_AT + dt.timedelta(hours=6, seconds=30 * k + 1),
                          source_position=f"0:{i}", answers_json='{"q1": 5, "q2": "a"}'))
    out.sort(key=lambda j: j.received_at)
    return [j.model_copy(update={"source_position": f"0:{n}"}) for n, j in enumerate(out)]


def run(store: SqlStore, rows: list[SubmissionJudged], restart_at: int | None,
        how: str = "naive", checkpoint: Path | None = None) -> set[tuple[str, str, int, str]]:
    """The stream through the findings step, restarted at `restart_at`: with the detectors
    rebuilt from the store (`how="rebuild"`), reopened from a checkpoint written at the stop
    (`"checkpoint"`), or starting empty (`"naive"`)."""
    findings = SqlFindings(store)
    step = FindingsStep(findings, AnomalyEngine())
    for start in range(0, len(rows), 25):
        if restart_at is not None and start == restart_at:
            if how == "checkpoint":
                assert checkpoint is not None
                detector_checkpoint.save(checkpoint, step.engine, start, KEY)
            step = FindingsStep(findings, AnomalyEngine())
            if how == "rebuild":
                step.rebuild(store.iter_recent_verdicts(49))
            elif how == "checkpoint":
                assert checkpoint is not None
                assert not detector_checkpoint.restore(checkpoint, step.engine, start + 1, KEY)
                assert not detector_checkpoint.restore(checkpoint, step.engine, start, "other")
                assert detector_checkpoint.restore(checkpoint, step.engine, start, KEY)
        batch = rows[start : start + 25]
        store.insert_judged(batch)
        step.process(batch)
    return {(f.anomaly, f.finding_id, f.revision, f.evidence.model_dump_json())
            for f in findings.findings("2023", limit=10_000)}


def test_a_restart_mid_window_raises_the_same_findings_as_no_restart(
    three: list[SqlStore], judged: Judged
) -> None:
    """Catches: detectors starting empty after a restart (the naive restart below misses or
    changes findings), or a rebuild that leaves out the network hash (the network cluster is
    then never found)."""
    rows = stream(judged)
    mid_window = next(n for n, j in enumerate(rows) if j.network == "netX") + 25
    mid_window -= mid_window % 25
    straight, restarted, naive = three
    want = run(straight, rows, None)
    assert {anomaly for anomaly, _, _, _ in want} >= {"network_cluster"}
    assert run(restarted, rows, mid_window, "rebuild") == want
    assert run(naive, rows, mid_window, "naive") != want


def test_a_clean_restart_from_the_detector_checkpoint_raises_the_same_findings(
    three: list[SqlStore], judged: Judged, tmp_path: Path
) -> None:
    """Catches a detector checkpoint that loses state (any detector starting empty changes the
    findings, as the naive restart above shows) or is read for another raw-log position or
    signing key (the restores for position + 1 and with another key must refuse it)."""
    rows = stream(judged)
    mid_window = next(n for n, j in enumerate(rows) if j.network == "netX") + 25
    mid_window -= mid_window % 25
    straight, restarted, _ = three
    want = run(straight, rows, None)
    assert run(restarted, rows, mid_window, "checkpoint", tmp_path / "detectors.ckpt") == want
