"""The embedded durable log: append-only segment files with group commit (one write + one fsync
per batch) and a sparse offset index, the single-process stand-in for a Kafka topic.

This module owns the concurrency: appends queued to one writer thread, readers in any thread,
all sharing one lock over the segment list and the end offset; the on-disk format (frames,
segments, recovery, the index) is eventlog/segments.py. The FileLog class stays one piece (~450
lines) on purpose: the writer, the readers and the waiters all rely on that one lock's view of
the segments and the end offset, and split apart that invariant would span several files.
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import contextlib
import errno
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from core.ports import LogUnavailableError
from eventlog.segments import (
    FRAME_OVERHEAD,
    LOCK_NAME,
    MAGIC,
    MAX_KEY_BYTES,
    SEGMENT_SUFFIX,
    LogCorruptionError,
    LogInUseError,
    MiB,
    Record,
    Segment,
    encode_record,
    frames,
    fsync_dir,
    index_sealed,
    load_segments,
    lock_directory,
    recover,
    segment_name,
    to_record,
)

# Re-exported: importers know these from here.
__all__ = [
    "DEFAULT_INDEX_INTERVAL_BYTES", "DEFAULT_MAX_QUEUED_BYTES", "DEFAULT_SEGMENT_BYTES",
    "FRAME_OVERHEAD", "LOCK_NAME", "MAGIC", "MAX_KEY_BYTES", "SEGMENT_SUFFIX", "FileLog",
    "FileLogStats", "LogCorruptionError", "LogInUseError", "Record", "encode_record",
]

log = logging.getLogger(__name__)

DEFAULT_SEGMENT_BYTES = 256 * MiB
DEFAULT_MAX_QUEUED_BYTES = 64 * MiB
# One index entry per this many bytes: a random read skips at most this much; 20 GB of log costs
# ~320k entries (5 MB in two arrays). Sequential consumers skip nothing thanks to the read hint.
DEFAULT_INDEX_INTERVAL_BYTES = 64 * 1024
# append_many_sync hands the writer chunks of at most this size, so one call cannot hog the queue.
_MANY_CHUNK_BYTES = 1 * MiB
# While unhealthy and idle, the writer checks this often whether the disk takes writes again, so
# readiness recovers even when the load balancer has stopped sending traffic.
_PROBE_INTERVAL_S = 1.0
_PROBE_BYTES = 64 * 1024
# A write refused for want of room (the filesystem, a quota, a file size limit).
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})

# fdatasync is enough (the file size is data for it); macOS has only fsync.
_datasync = getattr(os, "fdatasync", os.fsync)


def _write_all(fd: int, data: bytes) -> None:
    """One write call; loops only on a short write (e.g. a signal or a huge batch)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


@dataclass
class FileLogStats:
    """Counters kept by the writer thread (read them for tests and metrics, never write)."""

    records: int = 0
    batches: int = 0
    fsyncs: int = 0
    bytes_written: int = 0
    max_batch_records: int = 0
    write_errors: int = 0
    segments_rolled: int = 0
    truncated_bytes_on_open: int = 0


class _Pending:
    """Queued bytes (one record, or several from append_many_sync) and who waits for them:
    an asyncio future with its loop, or a concurrent future of a synchronous caller."""

    __slots__ = ("afuture", "count", "data", "loop", "sizes", "sync_future")

    def __init__(
        self,
        data: bytes,
        *,
        count: int = 1,
        sizes: list[int] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        afuture: asyncio.Future[int] | None = None,
        sync_future: concurrent.futures.Future[int] | None = None,
    ) -> None:
        self.data = data
        self.count = count
        self.sizes = sizes  # per-record sizes when count > 1, for the sparse index
        self.loop = loop
        self.afuture = afuture
        self.sync_future = sync_future


_Outcomes = dict[asyncio.AbstractEventLoop, list[tuple["asyncio.Future[Any]", Any]]]


def _deliver(
    pending: _Pending, outcome: int | BaseException, by_loop: _Outcomes
) -> None:
    """Sync callers are told at once; asyncio callers are grouped per loop (see `_settle`)."""
    if pending.sync_future is not None:
        if pending.sync_future.done():  # only after a writer bug failed an answered batch
            return
        if isinstance(outcome, BaseException):
            pending.sync_future.set_exception(outcome)
        else:
            pending.sync_future.set_result(outcome)
    elif pending.loop is not None and pending.afuture is not None:
        by_loop.setdefault(pending.loop, []).append((pending.afuture, outcome))


def _settle(items: list[tuple[asyncio.Future[Any], Any]]) -> None:
    """Runs on the waiters' own loop: one call per loop per batch, not one per append."""
    for future, outcome in items:
        if future.done():  # cancelled by its caller (timeout, disconnect): nothing to tell
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


class FileLog:
    """A durable, append-only log in `directory` (see the module docstring for the format).

    `append` returns only after the record is written and fdatasync'ed (with `fsync=False`: after
    the write reached the OS, which survives a process crash but not a power cut). Concurrent
    appends are group-committed by one writer thread. Only one FileLog may have a directory open.
    A segment may exceed `segment_bytes` by at most one batch, since a batch is never split.
    """

    def __init__(
        self,
        directory: Path,
        *,
        fsync: bool = True,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES,
        index_interval_bytes: int = DEFAULT_INDEX_INTERVAL_BYTES,
    ) -> None:
        if segment_bytes <= 0 or max_queued_bytes <= 0 or index_interval_bytes <= 0:
            raise ValueError("segment_bytes, max_queued_bytes and index_interval_bytes must be > 0")
        self.directory = Path(directory)
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self.max_queued_bytes = max_queued_bytes
        self.index_interval_bytes = index_interval_bytes
        self.stats = FileLogStats()

        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # the writer sleeps on it
        self._grown = threading.Condition(self._lock)  # synchronous readers wait on it
        self._queue: list[_Pending] = []
        self._queued_bytes = 0  # queued plus being written: all the memory appends hold
        self._writer_waiting = False
        self._closing = False
        self._closed = False
        self._healthy = True
        # Set when the file's state is unknown: no more writes until reopened.
        self._broken: BaseException | None = None
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[bool]]] = []
        self._hint: tuple[int, Segment, int] | None = None  # where the last read stopped

        self._lock_fd = lock_directory(self.directory)
        try:
            self._segments, self._bases = load_segments(self.directory)
            self._active = self._segments[-1]
            self._end, self.stats.truncated_bytes_on_open = recover(
                self._active, index_interval_bytes
            )
            self._write_fd = os.open(
                self._active.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
            )
        except BaseException:
            for segment in getattr(self, "_segments", []):
                if segment.read_fd is not None:
                    os.close(segment.read_fd)
            os.close(self._lock_fd)
            raise
        self._writer = threading.Thread(
            target=self._run_writer, name=f"filelog-writer:{self.directory.name}", daemon=True
        )
        self._writer.start()

    # -- appending --------------------------------------------------------------------------

    async def append(self, key: bytes, value: bytes) -> int:
        """Append one record; returns its offset once it is durable.

        Raises LogUnavailableError (nothing acknowledged; the caller may retry) when the write
        failed, the log is closed, or more than `max_queued_bytes` are waiting.
        """
        data = self._checked(key, value)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._enqueue(_Pending(data, loop=loop, afuture=future))
        # If the caller is cancelled, the record may still be written: harmless, since the
        # system is idempotent on submission_id.
        return await future

    def append_sync(self, key: bytes, value: bytes) -> int:
        """Blocking append for callers without an event loop; returns the offset once durable."""
        future: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._enqueue(_Pending(self._checked(key, value), sync_future=future))
        return future.result()

    def append_many_sync(self, records: Iterable[tuple[bytes, bytes]]) -> list[int]:
        """Blocking append of many records, in order; returns their offsets once durable.

        Records go in chunks of about 1 MiB, each contiguous in the log. If a chunk fails, the
        ones before it are durable but the call raises LogUnavailableError all the same.
        """
        offsets: list[int] = []
        chunk: list[bytes] = []
        chunk_bytes = 0

        def flush() -> None:
            nonlocal chunk, chunk_bytes
            future: concurrent.futures.Future[int] = concurrent.futures.Future()
            sizes = [len(d) for d in chunk]
            self._enqueue(
                _Pending(b"".join(chunk), count=len(chunk), sizes=sizes, sync_future=future)
            )
            first = future.result()
            offsets.extend(range(first, first + len(chunk)))
            chunk, chunk_bytes = [], 0

        for key, value in records:
            data = self._checked(key, value)
            if chunk and chunk_bytes + len(data) > min(_MANY_CHUNK_BYTES, self.max_queued_bytes):
                flush()
            chunk.append(data)
            chunk_bytes += len(data)
        if chunk:
            flush()
        return offsets

    def _checked(self, key: bytes, value: bytes) -> bytes:
        data = encode_record(key, value)
        if len(data) > self.max_queued_bytes:
            raise ValueError(
                f"record is {len(data)} bytes; max_queued_bytes is {self.max_queued_bytes}"
            )
        return data

    def _enqueue(self, pending: _Pending) -> None:
        with self._lock:
            if self._closing:
                raise LogUnavailableError(f"log {self.directory} is closed")
            if self._broken is not None:
                raise LogUnavailableError(f"log {self.directory} failed: {self._broken}")
            if self._queued_bytes + len(pending.data) > self.max_queued_bytes:
                raise LogUnavailableError(
                    f"log {self.directory} is overloaded: {self._queued_bytes} bytes wait for disk"
                )
            self._queue.append(pending)
            self._queued_bytes += len(pending.data)
            if self._writer_waiting:
                self._work.notify()

    # -- the writer thread ------------------------------------------------------------------

    def _run_writer(self) -> None:
        while True:
            probe = False
            with self._lock:
                while not self._queue:
                    if self._closing:
                        return
                    unhealthy = not self._healthy and self._broken is None
                    self._writer_waiting = True
                    woken = self._work.wait(_PROBE_INTERVAL_S if unhealthy else None)
                    self._writer_waiting = False
                    if unhealthy and not woken and not self._queue and not self._closing:
                        probe = True
                        break
                batch, self._queue = self._queue, []
            if probe:
                self._probe()
                continue
            try:
                self._commit(batch)
            except BaseException as exc:  # a bug, not an I/O error: never leave callers hanging
                log.exception("file log writer failed")
                with self._lock:
                    self._broken = exc
                    self._healthy = False
                self._fail(batch, exc)

    def _commit(self, batch: list[_Pending]) -> None:
        total = sum(len(p.data) for p in batch)
        try:
            if self._broken is not None:
                raise LogUnavailableError(f"log {self.directory} failed: {self._broken}")
            self._maybe_roll()
            data = batch[0].data if len(batch) == 1 else b"".join(p.data for p in batch)
            _write_all(self._write_fd, data)
            if self.fsync:
                _datasync(self._write_fd)
                self.stats.fsyncs += 1
        except (OSError, LogUnavailableError) as exc:
            self._write_failed(batch, total, exc)
            return

        results: _Outcomes = {}
        firsts: list[int] = []
        with self._lock:
            segment = self._active
            offset, pos = self._end, segment.size
            interval = self.index_interval_bytes
            for pending in batch:
                firsts.append(offset)
                if pending.sizes is None:
                    segment.note(offset, pos, interval)
                    offset += 1
                    pos += len(pending.data)
                else:
                    for size in pending.sizes:
                        segment.note(offset, pos, interval)
                        offset += 1
                        pos += size
            records = offset - self._end
            segment.size = pos
            self._end = offset
            self._queued_bytes -= total
            self._healthy = True
            self._grown.notify_all()
            if self._waiters:
                still = []
                for waiter in self._waiters:
                    if waiter[0] < offset:
                        results.setdefault(waiter[1], []).append((waiter[2], True))
                    else:
                        still.append(waiter)
                self._waiters = still
        stats = self.stats
        stats.records += records
        stats.batches += 1
        stats.bytes_written += total
        stats.max_batch_records = max(stats.max_batch_records, records)
        for pending, first in zip(batch, firsts, strict=True):
            _deliver(pending, first, results)
        for loop, items in results.items():
            _call_soon(loop, items)

    def _maybe_roll(self) -> None:
        active = self._active
        if active.size < self.segment_bytes or self._end == active.base:
            return
        segment = Segment(self._end, self.directory / segment_name(self._end), 0)
        fd = os.open(segment.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            fsync_dir(self.directory)  # the new name must survive a crash before its records do
        except OSError:
            os.close(fd)
            raise
        segment.indexed = True
        old_fd, self._write_fd = self._write_fd, fd
        os.close(old_fd)  # everything in it was fsync'ed by the batch that filled it
        with self._lock:
            self._segments.append(segment)
            self._bases.append(segment.base)
            self._active = segment
        self.stats.segments_rolled += 1

    def _write_failed(self, batch: list[_Pending], total: int, exc: BaseException) -> None:
        """Cut whatever part of the batch reached the file, then fail its callers.

        The cut comes first, so a LogUnavailableError really means "not stored". It needs no
        fsync of its own: the next successful batch's fdatasync makes the shorter size durable
        with it, and a crash before then leaves only unacknowledged bytes that the scan on open
        cuts again. If the cut itself fails, the file's state is unknown and the log refuses all
        further writes; reopening it (which scans and truncates the tail) is the way back.
        """
        self.stats.write_errors += 1
        with self._lock:
            self._healthy = False
            self._queued_bytes -= total
        if self._broken is None:
            log.error("file log %s: write failed: %s", self.directory, exc)
            try:
                os.ftruncate(self._write_fd, self._active.size)
            except OSError as cut_exc:
                log.error("file log %s: cannot cut the failed write (%s); refusing writes until "
                          "reopened", self.directory, cut_exc)
                with self._lock:
                    self._broken = cut_exc
        self._fail(batch, exc)

    def _fail(self, batch: list[_Pending], exc: BaseException) -> None:
        results: _Outcomes = {}
        full = isinstance(exc, OSError) and exc.errno in _DISK_FULL
        reason = "log unavailable: its disk is full" if full else "log unavailable: write failed"
        for pending in batch:
            # One exception object per caller: a shared one would collect every task's traceback.
            error = LogUnavailableError(
                f"log {self.directory}: write failed, not stored: {exc}", reason=reason)
            _deliver(pending, error, results)
        for loop, items in results.items():
            _call_soon(loop, items)

    def _probe(self) -> None:
        """Does the disk take writes again (space freed)? Reserve some room, then give it back."""
        fd, size = self._write_fd, self._active.size
        try:
            try:
                os.posix_fallocate(fd, size, _PROBE_BYTES)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                # No fallocate here: let the next append be the probe.
            os.ftruncate(fd, size)
            _datasync(fd)
        except OSError as exc:
            log.debug("file log %s: still unwritable: %s", self.directory, exc)
            try:
                os.ftruncate(fd, size)
            except OSError as cut_exc:
                with self._lock:
                    self._broken = cut_exc
            return
        with self._lock:
            self._healthy = True
        log.info("file log %s: writable again", self.directory)

    # -- reading ----------------------------------------------------------------------------

    @property
    def end_offset(self) -> int:
        """The next offset to be assigned: every offset below it is durable and readable."""
        return self._end

    def read(self, start: int, max_records: int = 1000) -> list[Record]:
        """Up to `max_records` durable records from offset `start` on (empty at the end).

        Safe to call from any thread. Sequential reads resume exactly where the previous read
        stopped; others start from the sparse index (at most one index interval of skipping).
        """
        if start < 0:
            raise ValueError(f"offset must be >= 0, got {start}")
        records: list[Record] = []
        offset = start
        while len(records) < max_records:
            with self._lock:
                if self._closed:
                    raise ValueError(f"log {self.directory} is closed")
                end = self._end
                if offset >= end:
                    break
                i = bisect.bisect_right(self._bases, offset) - 1
                segment = self._segments[i]
                segment_end = self._bases[i + 1] if i + 1 < len(self._bases) else end
                limit = segment.size
                indexed = segment.indexed
            if not indexed:
                self._index_sealed(segment, segment_end)
            with self._lock:
                at, pos = self._position(segment, offset)
            fd = self._read_fd(segment)
            for frame_pos, payload in frames(fd, pos, limit):
                if at >= offset:
                    records.append(to_record(at, payload))
                at += 1
                pos = frame_pos + FRAME_OVERHEAD + len(payload)
                if len(records) >= max_records or at >= segment_end:
                    break
            if at < segment_end and len(records) < max_records:
                raise LogCorruptionError(
                    f"{segment.path}: durable records end at offset {at} (position {pos}), "
                    f"expected {segment_end}"
                )
            offset = at
            with self._lock:
                self._hint = (at, segment, pos) if at < segment_end else None
        return records

    def _position(self, segment: Segment, offset: int) -> tuple[int, int]:
        at, pos = segment.lookup(offset)
        hint = self._hint
        if hint is not None and hint[1] is segment and at <= hint[0] <= offset:
            return hint[0], hint[2]
        return at, pos

    def _read_fd(self, segment: Segment) -> int:
        fd = segment.read_fd
        if fd is None:
            fd = os.open(segment.path, os.O_RDONLY | os.O_CLOEXEC)
            with self._lock:
                if segment.read_fd is None:
                    segment.read_fd = fd
                else:  # another reader won the race
                    os.close(fd)
                    fd = segment.read_fd
        return fd

    def _index_sealed(self, segment: Segment, segment_end: int) -> None:
        """Index a sealed segment on its first read."""
        offsets, positions, last_indexed = index_sealed(
            self._read_fd(segment), segment, segment_end, self.index_interval_bytes
        )
        with self._lock:
            segment.index_offsets, segment.index_positions = offsets, positions
            segment.last_indexed_pos = last_indexed
            segment.indexed = True

    async def wait_for(self, offset: int, timeout: float) -> bool:
        """Wait until the record at `offset` is durable; False if `timeout` seconds pass first."""
        if self._end > offset:
            return True
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        waiter = (offset, loop, future)
        with self._lock:
            if self._end > offset:
                return True
            if self._closing:
                return False
            self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return False
        finally:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def wait_sync(self, offset: int, timeout: float) -> bool:
        """Blocking `wait_for`, for reader threads; False on timeout or close."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._end <= offset:
                left = deadline - time.monotonic()
                if self._closing or left <= 0:
                    return False
                self._grown.wait(left)
            return True

    # -- health and lifecycle ---------------------------------------------------------------

    def healthy(self) -> bool:
        """False when closed, after a failed write (until the disk takes writes again) or broken."""
        return self._healthy and self._broken is None and not self._closing

    def close(self) -> None:
        """Write what is queued, stop the writer, release the directory. Idempotent.

        Stop readers first: a `read` running in another thread during close may fail.
        """
        with self._lock:
            self._closing = True
            self._work.notify_all()
            self._grown.notify_all()
        self._writer.join()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            waiters, self._waiters = self._waiters, []
        results: _Outcomes = {}
        for _, loop, future in waiters:
            results.setdefault(loop, []).append((future, False))
        for loop, items in results.items():
            _call_soon(loop, items)
        os.close(self._write_fd)
        for segment in self._segments:
            if segment.read_fd is not None:
                os.close(segment.read_fd)
                segment.read_fd = None
        os.close(self._lock_fd)  # releases the flock

    def __enter__(self) -> FileLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FileLog({str(self.directory)!r}, end_offset={self._end})"


def _call_soon(
    loop: asyncio.AbstractEventLoop, items: list[tuple[asyncio.Future[Any], Any]]
) -> None:
    with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is left to tell
        loop.call_soon_threadsafe(_settle, items)
