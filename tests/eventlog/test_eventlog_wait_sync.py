"""FileLog.wait_sync: how a reader thread (the embedded processor's commit loop) waits for the
next record without polling."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from eventlog.file_log import FileLog


def test_wait_sync_wakes_when_the_offset_becomes_durable(tmp_path: Path) -> None:
    """Catches: a writer that does not wake synchronous readers (they would only see new records
    when their timeout ran out, a whole batch interval late)."""
    with FileLog(tmp_path / "log", fsync=False) as log:
        log.append_sync(b"k", b"0")
        assert log.wait_sync(0, timeout=0)  # already durable: no wait
        woke: list[float] = []

        def reader() -> None:
            started = time.monotonic()
            assert log.wait_sync(1, timeout=30)
            woke.append(time.monotonic() - started)

        thread = threading.Thread(target=reader)
        thread.start()
        time.sleep(0.1)
        log.append_sync(b"k", b"1")
        thread.join(30)
        assert woke and woke[0] < 20  # woken by the append, not by the 30 s timeout


def test_wait_sync_gives_up_on_timeout_and_on_close(tmp_path: Path) -> None:
    """Catches: a reader left blocked forever by a log that was closed under it."""
    log = FileLog(tmp_path / "log", fsync=False)
    assert not log.wait_sync(0, timeout=0.05)
    answers: list[bool] = []
    thread = threading.Thread(target=lambda: answers.append(log.wait_sync(0, timeout=60)))
    thread.start()
    time.sleep(0.1)
    log.close()
    thread.join(30)
    assert answers == [False]
