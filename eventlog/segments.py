"""The file log's on-disk format: framed records in segment files, their scan, index and recovery.

Layout: `<directory>/<base offset, 20 digits>.log` segments; each record is

    magic u8 | length u32 | crc32 u32 | key length u16 | key | value      (big-endian)

where `length` and the zlib crc32 cover everything after the crc (key length, key, value).
Offsets are not stored: a record's offset is its segment's base offset plus its position in it.
Everything here runs on one segment or directory at a time; eventlog/file_log.py owns the
locking, the writer thread and the readers that use it.
"""

from __future__ import annotations

import bisect
import fcntl
import logging
import os
import struct
import zlib
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger(__name__)

MAGIC = 0xA7
FRAME = struct.Struct(">BII")  # magic, length, crc32 of the payload
KEY_LEN = struct.Struct(">H")
FRAME_OVERHEAD = FRAME.size  # 9 bytes before the payload
MAX_KEY_BYTES = 0xFFFF
SEGMENT_SUFFIX = ".log"
LOCK_NAME = "LOCK"

MiB = 1 << 20
_READ_CHUNK_BYTES = 256 * 1024


class Record(NamedTuple):
    offset: int
    key: bytes
    value: bytes


class LogCorruptionError(Exception):
    """A record that was durable no longer reads back (disk corruption, or files edited by hand)."""


class LogInUseError(Exception):
    """Another FileLog (in this or another process) has the directory open."""


def encode_record(key: bytes, value: bytes) -> bytes:
    if len(key) > MAX_KEY_BYTES:
        raise ValueError(f"key is {len(key)} bytes; the limit is {MAX_KEY_BYTES}")
    key_len = KEY_LEN.pack(len(key))
    crc = zlib.crc32(value, zlib.crc32(key, zlib.crc32(key_len)))
    return b"".join((FRAME.pack(MAGIC, 2 + len(key) + len(value), crc), key_len, key, value))


def frames(
    fd: int, pos: int, limit: int, chunk_bytes: int = _READ_CHUNK_BYTES
) -> Iterator[tuple[int, memoryview]]:
    """Yield (file position, payload) of each well-formed frame from `pos` up to `limit`.

    Stops silently at the first frame that is torn, has a bad magic or length, or fails its CRC;
    callers tell "clean end" from "bad frame" by comparing where the frames stopped with `limit`.
    """
    buf = b""
    buf_pos = pos
    while pos + FRAME_OVERHEAD <= limit:
        rel = pos - buf_pos
        if rel + FRAME_OVERHEAD > len(buf):
            buf = os.pread(fd, min(chunk_bytes, limit - pos), pos)
            buf_pos, rel = pos, 0
            if len(buf) < FRAME_OVERHEAD:
                return
        magic, length, crc = FRAME.unpack_from(buf, rel)
        end = pos + FRAME_OVERHEAD + length
        if magic != MAGIC or length < KEY_LEN.size or end > limit:
            return
        if rel + FRAME_OVERHEAD + length > len(buf):
            buf = os.pread(fd, min(max(chunk_bytes, FRAME_OVERHEAD + length), limit - pos), pos)
            buf_pos, rel = pos, 0
            if len(buf) < FRAME_OVERHEAD + length:
                return
        payload = memoryview(buf)[rel + FRAME_OVERHEAD : rel + FRAME_OVERHEAD + length]
        if zlib.crc32(payload) != crc:
            return
        (key_len,) = KEY_LEN.unpack_from(payload)
        if key_len > length - KEY_LEN.size:
            return
        yield pos, payload
        pos = end


def to_record(offset: int, payload: memoryview) -> Record:
    (key_len,) = KEY_LEN.unpack_from(payload)
    return Record(offset, bytes(payload[2 : 2 + key_len]), bytes(payload[2 + key_len :]))


def segment_name(base: int) -> str:
    return f"{base:020d}{SEGMENT_SUFFIX}"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Segment:
    """One segment file. `size` is its durable length; the index maps offsets to positions."""

    __slots__ = ("base", "index_offsets", "index_positions", "indexed", "last_indexed_pos",
                 "path", "read_fd", "size")

    def __init__(self, base: int, path: Path, size: int) -> None:
        self.base = base
        self.path = path
        self.size = size
        self.index_offsets = array("q", [base])
        self.index_positions = array("q", [0])
        self.last_indexed_pos = 0
        self.indexed = False
        self.read_fd: int | None = None

    def note(self, offset: int, pos: int, interval: int) -> None:
        if pos - self.last_indexed_pos >= interval:
            self.index_offsets.append(offset)
            self.index_positions.append(pos)
            self.last_indexed_pos = pos

    def lookup(self, offset: int) -> tuple[int, int]:
        """The indexed (offset, position) at or before `offset`."""
        j = bisect.bisect_right(self.index_offsets, offset) - 1
        return self.index_offsets[j], self.index_positions[j]


def lock_directory(directory: Path) -> int:
    """Create `directory` if need be and take its lock (an flock on LOCK); returns the fd."""
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    if created:
        fsync_dir(directory.parent)
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        # flock is per open file description, so it also catches a second open in-process.
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LogInUseError(f"{directory} is already open in another FileLog") from None
    return fd


def load_segments(directory: Path) -> tuple[list[Segment], list[int]]:
    """The segments in `directory` by base offset (an empty first one if there are none)."""
    bases: list[int] = []
    for path in directory.iterdir():
        stem = path.name.removesuffix(SEGMENT_SUFFIX)
        if path.name.endswith(SEGMENT_SUFFIX) and len(stem) == 20 and stem.isdigit():
            bases.append(int(stem))
    bases.sort()
    if not bases:
        path = directory / segment_name(0)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
        fsync_dir(directory)
        bases = [0]
    segments = []
    for base in bases:
        path = directory / segment_name(base)
        segments.append(Segment(base, path, path.stat().st_size))
    return segments, bases


def recover(segment: Segment, index_interval_bytes: int) -> tuple[int, int]:
    """Scan the active segment, index it, cut a torn or corrupt tail; returns the end offset
    and the bytes cut.

    Like Kafka, everything from the first bad frame on is cut: after a crash the unsynced last
    batch may have reached the disk in any order (a zeroed page, then valid-looking records),
    and none of it was acknowledged, since acknowledgement follows the fsync.
    """
    fd = os.open(segment.path, os.O_RDONLY | os.O_CLOEXEC)
    segment.read_fd = fd
    file_size = segment.size
    offset, valid_end = segment.base, 0
    for pos, payload in frames(fd, 0, file_size, chunk_bytes=4 * MiB):
        segment.note(offset, pos, index_interval_bytes)
        offset += 1
        valid_end = pos + FRAME_OVERHEAD + len(payload)
    if valid_end < file_size:
        log.warning(
            "%s: cutting %d bytes after offset %d: the torn or corrupt tail of a write "
            "interrupted by a crash",
            segment.path, file_size - valid_end, offset - 1,
        )
        wfd = os.open(segment.path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.ftruncate(wfd, valid_end)
            os.fsync(wfd)
        finally:
            os.close(wfd)
    segment.size = valid_end
    segment.indexed = True
    return offset, file_size - valid_end


def index_sealed(
    fd: int, segment: Segment, segment_end: int, index_interval_bytes: int
) -> tuple[array[int], array[int], int]:
    """The sparse index of a sealed segment: (offsets, positions, last indexed position).

    Built on first read, not at open: old segments may be many GB.
    """
    offsets, positions = array("q", [segment.base]), array("q", [0])
    last_indexed, offset, valid_end = 0, segment.base, 0
    for pos, payload in frames(fd, 0, segment.size, chunk_bytes=4 * MiB):
        if pos - last_indexed >= index_interval_bytes:
            offsets.append(offset)
            positions.append(pos)
            last_indexed = pos
        offset += 1
        valid_end = pos + FRAME_OVERHEAD + len(payload)
    if offset != segment_end or valid_end != segment.size:
        raise LogCorruptionError(
            f"{segment.path}: holds offsets up to {offset} ({valid_end} of {segment.size} "
            f"bytes valid), expected up to {segment_end}"
        )
    return offsets, positions, last_indexed
