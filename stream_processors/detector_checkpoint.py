"""The anomaly detectors' state on disk, written at a clean stop beside the judging memory's
checkpoint (stream_processors/memory_checkpoint.py) and read at the next start under the same
rule: only for the raw-log position it was written at. It replaces the rebuild from the stored
verdicts of the last 49 hours (about a minute of a core per million of them, on a thread that
holds the GIL beside the serving loop), and unlike that rebuild it continues every detector
exactly where it stopped, the campaign-wide references included. What the rebuild also repaired
(findings a run could not store) is left to it: a run with such a failure writes no checkpoint.

The state is pickled, so the file is authenticated before it is read: an HMAC-SHA256 keyed with
the server's hash key (SURVEY_HASH_KEY) over the header and the state, in a file only the
server's user can read (it names sheets). A checkpoint of another position, build (the state
classes' source), configuration or key, or one that cannot be read, is ignored: the detectors
are rebuilt. `survey-ingest erase` deletes it (the store no longer has the erased sheets).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import os
import pickle
from pathlib import Path
from typing import Any

from core.anomaly import AnomalyEngine, sketches, state, text_index
from core.anomaly import engine as engine_module
from core.anomaly.config import DETECTOR_VERSION

log = logging.getLogger(__name__)
FORMAT = 2
FILE_NAME = "detectors.ckpt"


def _state_shape() -> str:
    """The source of the classes a checkpoint pickles: another build's state is never read."""
    digest = hashlib.sha256()
    for module in (engine_module, state, sketches, text_index):
        with open(module.__file__ or "", "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()[:16]


def _header(engine: AnomalyEngine, position: int) -> bytes:
    return json.dumps({
        "format": FORMAT, "position": position, "detectors": DETECTOR_VERSION,
        "shape": _state_shape(), "config": dataclasses.asdict(engine.config),
    }, sort_keys=True).encode()


def _mac(key: str, header: bytes, body: bytes) -> bytes:
    return hmac.new(key.encode(), header + b"\n" + body, hashlib.sha256).hexdigest().encode()


def save(path: Path, engine: AnomalyEngine, position: int, key: str) -> None:
    """Write the detectors' state for `position` atomically (temporary file, fsync, rename)."""
    header = _header(engine, position)
    body = pickle.dumps(engine.state(), protocol=pickle.HIGHEST_PROTOCOL)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_mac(key, header, body) + b"\n" + header + b"\n" + body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def restore(path: Path, engine: AnomalyEngine, position: int, key: str) -> bool:
    """Load the state saved for `position` into `engine`; False (engine untouched) when there is
    no checkpoint, or it is for another position, build, configuration or key, or unreadable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False
    try:
        mac, header, body = data.split(b"\n", 2)
        if not hmac.compare_digest(mac, _mac(key, header, body)):
            log.warning("detector checkpoint %s is not signed with this server's key:"
                        " rebuilding", path)
            return False
        if header != _header(engine, position):
            log.info("detector checkpoint %s is for %s, not position %d of this build:"
                     " rebuilding", path, json.loads(header).get("position"), position)
            return False
        saved: dict[str, Any] = pickle.loads(body)
        engine.resume(saved)
    except Exception as exc:  # any damage: the rebuild is always correct
        log.warning("detector checkpoint %s unusable (%r): rebuilding", path, exc)
        return False
    return True
