"""OffsetStore: named offsets survive reopen, commits are atomic, bad files are loud."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from eventlog.offsets import OffsetStore, OffsetStoreError

ROOT = Path(__file__).resolve().parents[2]


def test_unknown_consumers_start_at_zero_and_commits_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state" / "offsets.json"
    store = OffsetStore(path)
    assert store.get("judge") == 0
    store.commit("judge", 42)
    store.commit("sink", 7)
    store.commit("judge", 43)
    assert store.get("judge") == 43
    reopened = OffsetStore(path)
    assert reopened.snapshot() == {"judge": 43, "sink": 7}
    reopened.commit("judge", 0)  # a replay may go back on purpose
    assert OffsetStore(path).get("judge") == 0


def test_a_commit_that_fails_before_its_rename_leaves_the_previous_offsets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "offsets.json"
    store = OffsetStore(path)
    store.commit("judge", 10)

    def crash(*args: object) -> None:
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        store.commit("judge", 11)
    monkeypatch.undo()
    assert store.get("judge") == 10  # memory agrees with the disk
    assert (tmp_path / "offsets.json.tmp").exists()
    reopened = OffsetStore(path)  # the leftover temporary file is ignored and removed
    assert reopened.get("judge") == 10
    assert not (tmp_path / "offsets.json.tmp").exists()


def test_offsets_file_is_always_whole_when_the_process_is_killed_mid_commit(
    tmp_path: Path,
) -> None:
    path = tmp_path / "offsets.json"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from eventlog.offsets import OffsetStore
        store = OffsetStore(Path({str(path)!r}))
        n = 0
        while True:
            n += 1
            store.commit("judge", n)
            store.commit("consumer-with-a-long-name-" + "x" * (n % 200), n)
            print(n, flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    last = 0
    for line in proc.stdout:
        last = int(line)
        if last >= 100:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    offsets = json.loads(path.read_text())  # whole JSON, never a torn write
    assert offsets["judge"] >= last
    assert OffsetStore(path).get("judge") == offsets["judge"]


def test_bad_offsets_are_refused(tmp_path: Path) -> None:
    store = OffsetStore(tmp_path / "offsets.json")
    with pytest.raises(ValueError):
        store.commit("judge", -1)
    with pytest.raises(ValueError):
        store.commit("judge", 1.5)  # type: ignore[arg-type]
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(OffsetStoreError, match="not JSON"):
        OffsetStore(tmp_path / "broken.json")
    (tmp_path / "wrong.json").write_text('{"judge": "12"}')
    with pytest.raises(OffsetStoreError, match="name -> offset"):
        OffsetStore(tmp_path / "wrong.json")
