"""Named consumer offsets in one small JSON file, committed durably and atomically."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path


class OffsetStoreError(Exception):
    """The offsets file exists but cannot be read as {name: offset}."""


class OffsetStore:
    """`get(name)` is the next offset that consumer should read (0 if it never committed).

    `commit` writes a temporary file, fsyncs it, renames it over the old one and fsyncs the
    directory, so after a crash the file holds either the previous or the new offsets, never a
    mix. One process owns the file; commits from several threads are serialised.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp.unlink(missing_ok=True)  # a commit interrupted before its rename
        self._offsets = self._load()

    def _load(self) -> dict[str, int]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OffsetStoreError(f"{self.path}: not JSON ({exc})") from None
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and type(v) is int and v >= 0 for k, v in data.items()
        ):
            raise OffsetStoreError(f"{self.path}: expected an object of name -> offset >= 0")
        return data

    def get(self, name: str) -> int:
        with self._lock:
            return self._offsets.get(name, 0)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._offsets)

    def commit(self, name: str, offset: int) -> None:
        """Durably record `offset` (the next one to read) for consumer `name`.

        Going backwards is allowed on purpose: a replay resets a consumer to re-judge the log.
        """
        if type(offset) is not int or offset < 0:
            raise ValueError(f"offset must be an int >= 0, got {offset!r}")
        with self._lock:
            updated = {**self._offsets, name: offset}
            data = json.dumps(updated, sort_keys=True, indent=1).encode()
            fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(self._tmp, self.path)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)  # makes the rename itself durable
            finally:
                os.close(dir_fd)
            # Only now: a failed commit leaves the in-memory view at the last durable state.
            self._offsets = updated
