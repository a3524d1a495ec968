"""Child process for the crash tests: appends forever, printing each acknowledged offset.

    python eventlog_child.py DIR RUN CONCURRENCY [--fsize-limit BYTES]
                             [--segment-bytes BYTES] [--value-bytes BYTES] [--no-fsync]

Each stdout line is `<offset> <run> <n>`, written only after `append` returned. With
--fsize-limit the process may not grow files past BYTES (RLIMIT_FSIZE): writes then fail with
EFBIG like on a full disk; the child then reports `unavailable <refused> <healthy>` and, on
the next line, the reason the first refused append gave.
--segment-bytes 1 rolls a new segment for every batch; --value-bytes makes every value that long.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import resource
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.ports import LogUnavailableError
from eventlog.file_log import FileLog


def key_for(run: int, n: int) -> bytes:
    return f"{run}-{n}".encode()


def value_for(run: int, n: int, length: int | None = None) -> bytes:
    """Deterministic, varied length (1..3000 bytes) unless `length` is given, so the parent can
    check the content."""
    seed = hashlib.sha256(key_for(run, n)).digest()
    if length is None:
        length = 1 + (n * 7919 + run * 104729) % 3000
    return (seed * (length // len(seed) + 1))[:length]


async def main(
    directory: Path, run: int, concurrency: int, fsize_limit: int | None,
    segment_bytes: int | None = None, value_bytes: int | None = None, fsync: bool = True,
) -> None:
    if fsize_limit is not None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_limit, fsize_limit))
    # RLIMIT_FSIZE is per file: with the limit on, keep one big segment so the limit is reached.
    if segment_bytes is None:
        segment_bytes = 64 * 1024 if fsize_limit is None else 1 << 30
    log = FileLog(directory, segment_bytes=segment_bytes, fsync=fsync)
    counter = itertools.count()
    failed = asyncio.Event()
    reasons: list[str] = []  # what the client would be told, per refused append

    async def appender() -> None:
        while not failed.is_set():
            n = next(counter)
            try:
                offset = await log.append(key_for(run, n), value_for(run, n, value_bytes))
            except LogUnavailableError as exc:
                reasons.append(exc.reason)
                failed.set()
                return
            sys.stdout.write(f"{offset} {run} {n}\n")
            sys.stdout.flush()

    await asyncio.gather(*(appender() for _ in range(concurrency)))
    # Only reached with --fsize-limit. A smaller batch queued behind the failed one may still have
    # fitted; a record too big for the room left must be refused, and leave the log unhealthy.
    try:
        await log.append(b"after", b"x" * 400_000)
        refused = False
    except LogUnavailableError:
        refused = True
    sys.stdout.write(f"unavailable {refused} {log.healthy()}\n{reasons[0]}\n")
    sys.stdout.flush()
    log.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("directory", type=Path)
    parser.add_argument("run", type=int)
    parser.add_argument("concurrency", type=int)
    parser.add_argument("--fsize-limit", type=int)
    parser.add_argument("--segment-bytes", type=int)
    parser.add_argument("--value-bytes", type=int)
    parser.add_argument("--no-fsync", action="store_true")
    a = parser.parse_args()
    asyncio.run(main(a.directory, a.run, a.concurrency, a.fsize_limit, a.segment_bytes,
                     a.value_bytes, not a.no_fsync))
