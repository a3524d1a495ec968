"""The durability promise against real crashes: SIGKILL mid-stream, and a file size limit."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

from eventlog.file_log import FileLog

CHILD = Path(__file__).with_name("eventlog_child.py")


def _child_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("eventlog_child", CHILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


child = _child_module()


def _spawn(directory: Path, run: int, concurrency: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(directory), str(run), str(concurrency), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _acks_until_killed(proc: subprocess.Popen[str], wanted: int) -> list[tuple[int, int, int]]:
    """Read acknowledgements until `wanted`, SIGKILL the child mid-stream, keep reading the pipe."""
    assert proc.stdout is not None
    acks: list[tuple[int, int, int]] = []
    deadline = time.monotonic() + 60
    while len(acks) < wanted:
        line = proc.stdout.readline()
        assert line, f"child ended early: {proc.wait()} {proc.stderr.read() if proc.stderr else ''}"
        acks.append(tuple(int(x) for x in line.split()))  # type: ignore[arg-type]
        assert time.monotonic() < deadline, "child too slow"
    os.kill(proc.pid, signal.SIGKILL)
    # Lines already in the pipe were acknowledged before the kill; a cut last line is dropped.
    for line in proc.stdout:
        if line.endswith("\n"):
            acks.append(tuple(int(x) for x in line.split()))  # type: ignore[arg-type]
    assert proc.wait() == -signal.SIGKILL
    return acks


def _assert_acknowledged_present(log: FileLog, acks: list[tuple[int, int, int]]) -> None:
    records = {r.offset: r for r in log.read(0, 10**9)}
    assert sorted(records) == list(range(log.end_offset)), "offsets are not dense"
    for offset, run, n in acks:
        record = records.get(offset)
        assert record is not None, f"acknowledged offset {offset} lost"
        assert record.key == child.key_for(run, n)
        assert record.value == child.value_for(run, n)


def test_every_acknowledged_append_survives_sigkill_mid_stream(tmp_path: Path) -> None:
    directory = tmp_path / "raw"
    all_acks: list[tuple[int, int, int]] = []
    for run in range(3):  # each run resumes the log the previous kill left behind
        acks = _acks_until_killed(_spawn(directory, run, 32), wanted=1500)
        all_acks += acks
        offsets = [a[0] for a in all_acks]
        assert len(set(offsets)) == len(offsets), "an offset was acknowledged twice"
        with FileLog(directory) as log:
            assert log.end_offset > max(offsets)
            _assert_acknowledged_present(log, all_acks)
    assert len(list(directory.glob("*.log"))) > 3, "the test should cross segment boundaries"


def test_failed_writes_are_refused_and_cut_when_the_file_cannot_grow(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes writes fail with EFBIG part-way, like a full disk."""
    directory = tmp_path / "raw"
    proc = _spawn(directory, 0, 16, "--fsize-limit", str(300_000))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert lines[-1] == "unavailable True False", lines[-1]
    acks = [tuple(int(x) for x in line.split()) for line in lines[:-1]]
    assert acks, "some appends should succeed before the limit"
    with FileLog(directory) as log:
        # The part of the failed batch that reached the file was cut: nothing unacknowledged
        # and nothing torn is left (the reopen had nothing to truncate).
        assert log.stats.truncated_bytes_on_open == 0
        assert log.end_offset == len(acks)
        _assert_acknowledged_present(log, acks)  # type: ignore[arg-type]
        assert log.append_sync(b"k", b"v") == len(acks)
