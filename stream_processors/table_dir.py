"""Where a worker keeps its faust tables on disk: one directory per app and worker instance.

With `rocksdb://` tables every worker holds one RocksDB database per table partition under its
faust data dir. Two workers on one machine (two processes with the same SURVEY_DATA_DIR, as
infra/stack or a test runs them) must never open the same databases, so the directory is

    <data_dir>/faust/<app id>/<instance id>          (--instance-id given)
    <data_dir>/faust/<app id>/anonymous-<n>          (no instance id: the first free slot)

and a worker holds an exclusive lock on it (`flock` on its `.lock` file) for as long as it runs:
a second worker with the same instance id on the same machine stops at once with a clear error
instead of waiting for RocksDB's own lock (faust retries a locked database for 30 s per
partition, then fails). A restarted worker (same instance id) finds its databases again and
only replays what its changelogs gained since (faust keeps the offset in each database).

The databases are a cache of the changelog topics. They are only valid for the changelog topics
they were built from: a Kafka wiped and recreated (or a changelog topic deleted and created
again) under the same prefix would otherwise leave stale fingerprints and device claims that
the new topics know nothing about (faust notices a persisted offset beyond the topic's end, but
not one within it, nor an empty topic). `reset_if_changelogs_changed` keeps the changelogs'
identity (cluster id, topic ids) next to the tables and drops the tables when it changed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"
IDENTITY_FILE = "changelogs.json"
ANONYMOUS_SLOTS = 64
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class TableDirInUse(RuntimeError):
    """Another live process holds this worker directory."""


@dataclass
class WorkerDir:
    """A claimed worker directory; the lock lasts until `release` or the process's end."""

    path: Path
    _fd: int | None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def instance_dir_name(instance_id: str) -> str:
    """A directory name for an instance id: itself when safe, else a readable part + a hash."""
    if _SAFE.fullmatch(instance_id) and instance_id not in (".", ".."):
        return instance_id
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", instance_id).strip("._")[:60] or "instance"
    digest = hashlib.sha256(instance_id.encode()).hexdigest()[:12]
    return f"{readable}-{digest}"


def app_dir(data_dir: Path, app_id: str) -> Path:
    return Path(data_dir) / "faust" / instance_dir_name(app_id)


def _try_lock(path: Path) -> int | None:
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return None
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def claim_worker_dir(data_dir: Path, app_id: str, instance_id: str | None) -> WorkerDir:
    """Lock and return this worker's directory (see the module docstring)."""
    base = app_dir(data_dir, app_id)
    if instance_id:
        path = base / instance_dir_name(instance_id)
        fd = _try_lock(path)
        if fd is None:
            raise TableDirInUse(
                f"{path} is in use by another worker on this machine (same instance id "
                f"{instance_id!r}); give every worker its own --instance-id"
            )
        return WorkerDir(path, fd)
    for n in range(ANONYMOUS_SLOTS):
        path = base / f"anonymous-{n}"
        fd = _try_lock(path)
        if fd is not None:
            return WorkerDir(path, fd)
    raise TableDirInUse(f"all {ANONYMOUS_SLOTS} anonymous worker directories in {base} are in use")


def reset_if_changelogs_changed(path: Path, identity: dict[str, str]) -> bool:
    """Drop the tables under `path` unless they were built from these changelog topics.

    `identity`: the Kafka cluster id and each changelog topic's id. Returns True if tables were
    dropped. Everything but the lock and the identity file is removed: faust rebuilds the
    tables from the changelogs on start.
    """
    marker = path / IDENTITY_FILE
    try:
        known = json.loads(marker.read_text())
    except (FileNotFoundError, ValueError):
        known = None
    dropped = False
    if known != identity:
        stale = [p for p in path.iterdir() if p.name not in (LOCK_FILE, IDENTITY_FILE)]
        if stale:
            log.warning("tables in %s were built from other changelog topics (%s, now %s); "
                        "dropping them, they are rebuilt from the changelogs", path, known,
                        identity)
            for p in stale:
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        p.unlink()
            dropped = True
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps(identity, sort_keys=True))
        os.replace(tmp, marker)
    return dropped
