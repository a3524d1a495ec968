"""FileLog: offsets, durability on reopen, tail recovery, segments, group commit, failures."""

from __future__ import annotations

import asyncio
import errno
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.ports import LogUnavailableError
from eventlog import file_log
from eventlog.file_log import FRAME_OVERHEAD, FileLog, LogInUseError, Record


def record_size(key: bytes, value: bytes) -> int:
    return FRAME_OVERHEAD + 2 + len(key) + len(value)


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.log"))


@pytest.fixture
def log(tmp_path: Path) -> Iterator[FileLog]:
    with FileLog(tmp_path / "log") as opened:
        yield opened


# -- appending and reading ------------------------------------------------------------------


async def test_appended_records_read_back_with_their_offsets(log: FileLog) -> None:
    assert await log.append(b"a", b"first") == 0
    assert await log.append(b"", b"") == 1
    assert await log.append(b"k" * 65535, b"\x00\xff" * 5000) == 2
    assert log.end_offset == 3
    assert log.read(0) == [
        Record(0, b"a", b"first"),
        Record(1, b"", b""),
        Record(2, b"k" * 65535, b"\x00\xff" * 5000),
    ]
    assert log.read(1, 1) == [Record(1, b"", b"")]
    assert log.read(3) == []
    assert log.read(99) == []


async def test_500_concurrent_appends_get_dense_offsets_matching_the_log_order(
    log: FileLog,
) -> None:
    offsets = await asyncio.gather(*(log.append(b"%d" % i, b"v%d" % i) for i in range(500)))
    assert sorted(offsets) == list(range(500))
    for record in log.read(0, 1000):
        i = offsets.index(record.offset)
        assert record.key == b"%d" % i and record.value == b"v%d" % i


def test_appends_from_several_event_loops_are_each_answered_on_their_own_loop(
    log: FileLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    results: dict[int, list[tuple[int, bytes]]] = {}
    settled_on_wrong_loop: list[object] = []
    real_settle = file_log._settle

    def checked_settle(items: list[tuple[asyncio.Future[Any], Any]]) -> None:
        running = asyncio.get_running_loop()
        settled_on_wrong_loop.extend(f for f, _ in items if f.get_loop() is not running)
        real_settle(items)

    monkeypatch.setattr(file_log, "_settle", checked_settle)

    def thread_main(t: int) -> None:
        async def one(i: int) -> tuple[int, bytes]:
            key = b"%d-%d" % (t, i)
            return await log.append(key, key * 3), key

        async def run() -> list[tuple[int, bytes]]:
            return await asyncio.gather(*(one(i) for i in range(200)))

        results[t] = asyncio.run(run())

    threads = [threading.Thread(target=thread_main, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert settled_on_wrong_loop == []
    acked = [pair for pairs in results.values() for pair in pairs]
    assert sorted(o for o, _ in acked) == list(range(800))
    by_offset = {r.offset: r for r in log.read(0, 10_000)}
    for offset, key in acked:
        assert by_offset[offset].key == key and by_offset[offset].value == key * 3


def test_sync_appends_from_threads_and_batches_are_contiguous(log: FileLog) -> None:
    assert log.append_sync(b"s", b"1") == 0
    batch = [(b"m%d" % i, b"x" * i) for i in range(3000)]  # > 1 MiB: several chunks
    offsets = log.append_many_sync(batch)
    assert offsets == list(range(1, 3001))
    assert [(r.key, r.value) for r in log.read(1, 5000)] == batch
    assert log.append_many_sync([]) == []


async def test_a_cancelled_append_does_not_disturb_the_others(log: FileLog) -> None:
    tasks = [asyncio.create_task(log.append(b"k", b"%d" % i)) for i in range(50)]
    await asyncio.sleep(0)  # all enqueued
    tasks[10].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[10], asyncio.CancelledError)
    assert all(isinstance(d, int) for i, d in enumerate(done) if i != 10)
    # The cancelled one may still have been written: the system is idempotent on resend.
    assert log.end_offset in (49, 50)


# -- durability across reopen and crash tails -----------------------------------------------


def test_reopen_keeps_every_record_and_continues_the_offsets(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    with FileLog(directory) as log:
        log.append_many_sync([(b"k%d" % i, b"v%d" % i) for i in range(100)])
    with FileLog(directory) as log:
        assert log.end_offset == 100
        assert log.read(0, 1000) == [Record(i, b"k%d" % i, b"v%d" % i) for i in range(100)]
        assert log.append_sync(b"next", b"") == 100
        assert log.stats.truncated_bytes_on_open == 0


def _three_records(directory: Path) -> int:
    """Writes offsets 0..2; returns the byte size of the last record."""
    with FileLog(directory) as log:
        log.append_many_sync([(b"a", b"1" * 10), (b"b", b"2" * 20), (b"c", b"3" * 30)])
    return record_size(b"c", b"3" * 30)


def _reopened_keeps_two_and_continues(directory: Path) -> None:
    with FileLog(directory) as log:
        assert log.end_offset == 2
        assert log.stats.truncated_bytes_on_open > 0
        assert [r.value for r in log.read(0)] == [b"1" * 10, b"2" * 20]
        assert log.append_sync(b"d", b"4") == 2
    with FileLog(directory) as log:
        assert [r.key for r in log.read(0)] == [b"a", b"b", b"d"]
        assert log.stats.truncated_bytes_on_open == 0


@pytest.mark.parametrize("cut", [1, 5, 9, 20])
def test_a_torn_last_record_is_cut_on_open(tmp_path: Path, cut: int) -> None:
    directory = tmp_path / "log"
    _three_records(directory)
    (segment,) = segment_files(directory)
    os.truncate(segment, segment.stat().st_size - cut)
    _reopened_keeps_two_and_continues(directory)


@pytest.mark.parametrize(
    "tail", [b"\x00" * 4096, b"garbage!", bytes([file_log.MAGIC]) + b"\xff" * 12]
)
def test_bytes_after_the_last_full_record_are_cut_on_open(tmp_path: Path, tail: bytes) -> None:
    directory = tmp_path / "log"
    with FileLog(directory) as log:
        log.append_many_sync([(b"a", b"1" * 10), (b"b", b"2" * 20)])
    (segment,) = segment_files(directory)
    size = segment.stat().st_size
    with segment.open("ab") as f:
        f.write(tail)
    with FileLog(directory) as log:
        assert log.end_offset == 2
        assert log.stats.truncated_bytes_on_open == len(tail)
        assert segment.stat().st_size == size
        assert log.append_sync(b"c", b"3") == 2


@pytest.mark.parametrize("where", ["value", "key", "crc"])
def test_a_last_record_failing_its_crc_is_cut_on_open(tmp_path: Path, where: str) -> None:
    directory = tmp_path / "log"
    last = _three_records(directory)
    (segment,) = segment_files(directory)
    data = bytearray(segment.read_bytes())
    start = len(data) - last
    index = {"crc": start + 5, "key": start + FRAME_OVERHEAD + 2, "value": len(data) - 1}[where]
    data[index] ^= 0x01
    segment.write_bytes(bytes(data))
    _reopened_keeps_two_and_continues(directory)


# -- segments and the index -----------------------------------------------------------------


def test_segments_roll_over_and_reads_cross_them(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    records = [(b"k%d" % i, os.urandom(i % 300)) for i in range(2000)]
    with FileLog(directory, segment_bytes=8 * 1024, index_interval_bytes=1024) as log:
        for start in range(0, 2000, 50):  # batches of 50 so segments stay near their size
            log.append_many_sync(records[start : start + 50])
        assert log.stats.segments_rolled > 10
        assert [(r.key, r.value) for r in log.read(0, 5000)] == records
    files = segment_files(directory)
    assert files[0].name == "00000000000000000000.log"
    with FileLog(directory, segment_bytes=8 * 1024, index_interval_bytes=1024) as log:
        assert log.end_offset == 2000
        # Sealed segments are indexed lazily on first read; random reads land anywhere.
        for start in (1999, 0, 1234, 777, 1500, 1):
            got = log.read(start, 300)
            assert [r.offset for r in got] == list(range(start, min(start + 300, 2000)))
            assert [(r.key, r.value) for r in got] == records[start : start + 300]
        # Sequential consumption in small steps across every boundary.
        position, seen = 0, []
        while batch := log.read(position, 37):
            seen += batch
            position = batch[-1].offset + 1
        assert [(r.key, r.value) for r in seen] == records
        assert log.append_sync(b"more", b"") == 2000


def test_sequential_reads_resume_where_the_last_read_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = b"v" * 89
    size = record_size(b"key", value)  # 100 bytes per record
    with FileLog(tmp_path / "log", index_interval_bytes=1 << 30) as log:  # index: base only
        log.append_many_sync([(b"key", value)] * 5000)
        first_positions: list[int] = []
        real_pread = os.pread

        def counting_pread(fd: int, n: int, pos: int) -> bytes:
            first_positions.append(pos)
            return real_pread(fd, n, pos)

        monkeypatch.setattr(os, "pread", counting_pread)
        position = 0
        while position < 5000:
            first_positions.clear()
            batch = log.read(position, 100)
            # No rescan from the segment start: the first read is exactly at the wanted record.
            assert first_positions[0] == position * size
            position = batch[-1].offset + 1


def test_random_reads_skip_at_most_one_index_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = b"v" * 89
    size = record_size(b"key", value)
    with FileLog(tmp_path / "log", index_interval_bytes=4096) as log:
        log.append_many_sync([(b"key", value)] * 5000)
    with FileLog(tmp_path / "log", index_interval_bytes=4096) as log:  # index rebuilt on open
        starts: list[int] = []
        real_pread = os.pread

        def recording_pread(fd: int, n: int, pos: int) -> bytes:
            starts.append(pos)
            return real_pread(fd, n, pos)

        monkeypatch.setattr(os, "pread", recording_pread)
        for offset in (4321, 17, 2500, 4999):
            starts.clear()
            assert log.read(offset, 1)[0].offset == offset
            assert offset * size - 4096 - size < starts[0] <= offset * size


# -- waiting for records ----------------------------------------------------------------------


async def test_wait_for_wakes_when_the_offset_becomes_durable(log: FileLog) -> None:
    assert await log.wait_for(0, timeout=0.05) is False
    timer = threading.Timer(0.2, log.append_sync, args=(b"k", b"v"))
    started = time.monotonic()
    timer.start()
    assert await log.wait_for(0, timeout=5) is True
    elapsed = time.monotonic() - started
    assert 0.15 < elapsed < 1.0
    assert await log.wait_for(0, timeout=0) is True  # already there: no waiting
    assert await log.wait_for(1, timeout=0.05) is False
    assert log._waiters == []  # timed-out waiters do not pile up


async def test_close_wakes_waiters_with_false(tmp_path: Path) -> None:
    log = FileLog(tmp_path / "log")
    waiting = asyncio.create_task(log.wait_for(0, timeout=10))
    await asyncio.sleep(0.05)
    await asyncio.to_thread(log.close)
    assert await asyncio.wait_for(waiting, 1) is False


# -- group commit -----------------------------------------------------------------------------


async def test_concurrent_appends_share_fsyncs(log: FileLog) -> None:
    async def appender(n: int) -> None:
        for i in range(20):
            await log.append(b"%d" % n, b"%d" % i)

    await asyncio.gather(*(appender(n) for n in range(64)))
    stats = log.stats
    assert stats.records == 1280 and log.end_offset == 1280
    assert stats.fsyncs == stats.batches
    assert stats.fsyncs <= 1280 // 8, stats
    assert stats.max_batch_records > 1


def test_without_fsync_nothing_is_fsynced_but_records_are_written(tmp_path: Path) -> None:
    with FileLog(tmp_path / "log", fsync=False) as log:
        log.append_many_sync([(b"k", b"v")] * 10)
        assert log.stats.fsyncs == 0 and log.stats.records == 10
    with FileLog(tmp_path / "log") as log:
        assert log.end_offset == 10


# -- failures and limits ----------------------------------------------------------------------


def failing(
    after: int, error: int = errno.ENOSPC, real: Callable[..., None] = os.fdatasync
) -> Callable[..., None]:
    """`real` (fdatasync by default) working `after` times, then failing like a full disk."""
    calls = [0]

    def call(*args: int) -> None:
        calls[0] += 1
        if calls[0] > after:
            raise OSError(error, os.strerror(error))
        real(*args)

    return call


async def test_a_failed_fsync_fails_the_append_cuts_it_and_marks_the_log_unhealthy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "log"
    with FileLog(directory) as log:
        assert await log.append(b"ok", b"1") == 0
        (segment,) = segment_files(directory)
        size = segment.stat().st_size
        monkeypatch.setattr(file_log, "_datasync", failing(after=0))
        results = await asyncio.gather(
            *(log.append(b"lost", b"%d" % i) for i in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, LogUnavailableError) for r in results)
        assert not log.healthy()
        assert log.end_offset == 1 and log.read(0) == [Record(0, b"ok", b"1")]
        assert segment.stat().st_size == size  # the unsynced bytes were cut
        assert log.stats.write_errors >= 1
        monkeypatch.setattr(file_log, "_datasync", os.fdatasync)  # space freed
        assert await log.append(b"ok", b"2") == 1  # no gap where the failed writes were
        assert log.healthy()
    with FileLog(directory) as log:
        assert [r.value for r in log.read(0)] == [b"1", b"2"]


def test_an_idle_unhealthy_log_notices_when_the_disk_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_log, "_PROBE_INTERVAL_S", 0.05)
    with FileLog(tmp_path / "log") as log:
        monkeypatch.setattr(file_log, "_datasync", failing(after=0))
        with pytest.raises(LogUnavailableError):
            log.append_sync(b"k", b"v")
        time.sleep(0.3)
        assert not log.healthy()  # the probe still fails
        monkeypatch.setattr(file_log, "_datasync", os.fdatasync)
        deadline = time.monotonic() + 5
        while not log.healthy():  # recovers with no traffic, so readiness can come back
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert log.append_sync(b"k", b"v") == 0


def test_when_the_failed_write_cannot_be_cut_the_log_refuses_writes_until_reopened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "log"
    with FileLog(directory) as log:
        log.append_sync(b"k", b"0")
        monkeypatch.setattr(file_log, "_datasync", failing(after=0, error=errno.EIO))
        monkeypatch.setattr(os, "ftruncate", failing(after=0, error=errno.EIO, real=os.ftruncate))
        with pytest.raises(LogUnavailableError):
            log.append_sync(b"k", b"1")
        monkeypatch.undo()
        assert log.stats.write_errors == 1
        with pytest.raises(LogUnavailableError, match="failed"):
            log.append_sync(b"k", b"2")
        assert not log.healthy()
    with FileLog(directory) as log:  # reopening scans the tail and takes writes again
        assert log.healthy()
        assert log.end_offset in (1, 2)  # the uncut record may be complete; it was not acked
        assert log.append_sync(b"k", b"3") == log.end_offset - 1


async def test_appends_beyond_the_queue_bound_are_refused_not_buffered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()

    def slow_datasync(fd: int) -> None:
        release.wait(10)
        os.fdatasync(fd)

    monkeypatch.setattr(file_log, "_datasync", slow_datasync)
    value = b"x" * 988  # 1000 bytes per record
    with FileLog(tmp_path / "log", max_queued_bytes=10_000) as log:
        accepted = [asyncio.create_task(log.append(b"k", value)) for _ in range(10)]
        await asyncio.sleep(0.05)
        with pytest.raises(LogUnavailableError, match="overloaded"):
            await log.append(b"k", value)
        release.set()
        assert sorted(await asyncio.gather(*accepted)) == list(range(10))
        assert await log.append(b"k", value) == 10  # room again once written


def test_records_that_can_never_fit_are_rejected_up_front(tmp_path: Path) -> None:
    with FileLog(tmp_path / "log", max_queued_bytes=1000) as log:
        with pytest.raises(ValueError, match="max_queued_bytes"):
            log.append_sync(b"k", b"x" * 1000)
        with pytest.raises(ValueError, match="key"):
            log.append_sync(b"k" * 65536, b"")
        assert log.end_offset == 0 and log.healthy()


# -- lifecycle --------------------------------------------------------------------------------


async def test_close_writes_what_is_queued_and_is_idempotent(tmp_path: Path) -> None:
    log = FileLog(tmp_path / "log")
    pending = [asyncio.create_task(log.append(b"k", b"%d" % i)) for i in range(100)]
    await asyncio.sleep(0)
    await asyncio.to_thread(log.close)
    assert sorted(await asyncio.gather(*pending)) == list(range(100))
    log.close()
    assert not log.healthy()
    with pytest.raises(LogUnavailableError, match="closed"):
        await log.append(b"k", b"late")
    with pytest.raises(ValueError, match="closed"):
        log.read(0)
    with FileLog(tmp_path / "log") as reopened:
        assert reopened.end_offset == 100


def test_a_directory_can_be_open_in_one_file_log_only(tmp_path: Path) -> None:
    with FileLog(tmp_path / "log"), pytest.raises(LogInUseError):
        FileLog(tmp_path / "log")
    with FileLog(tmp_path / "log") as log:  # released on close
        assert log.healthy()


# -- property -----------------------------------------------------------------------------------

records_strategy = st.lists(
    st.tuples(st.binary(max_size=300), st.binary(max_size=3000)), max_size=60
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=records_strategy, segment_bytes=st.sampled_from([64, 1024, 1 << 20]))
def test_any_sequence_of_records_round_trips_and_survives_reopen(
    records: list[tuple[bytes, bytes]], segment_bytes: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "log"
        with FileLog(directory, fsync=False, segment_bytes=segment_bytes) as log:
            half = len(records) // 2
            offsets = log.append_many_sync(records[:half])
            offsets += [log.append_sync(k, v) for k, v in records[half:]]
            assert offsets == list(range(len(records)))
            assert [(r.key, r.value) for r in log.read(0, 10_000)] == records
        with FileLog(directory, segment_bytes=segment_bytes) as log:
            assert log.end_offset == len(records)
            got = [r for start in range(0, len(records), 7) for r in log.read(start, 7)]
            assert [(r.key, r.value) for r in got] == records
