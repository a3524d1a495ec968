"""The anomaly detectors' state on disk, written at a clean stop beside the judging memory's
checkpoint (stream_processors/memory_checkpoint.py) and read at the next start under the same
rule: only for the raw-log position it was written at, so no verdict is folded in twice or left
out. It replaces the rebuild from the stored verdicts of the last 49 hours (about a minute of a
core per million of them, on a thread that holds the GIL beside the serving loop), and unlike
that rebuild it continues every detector exactly where it stopped, the campaign-wide references
included.

The state is pickled: the file is the server's own, in its data directory, read by the same
build (the header names the detectors' version and configuration, and any other is ignored).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pickle
from pathlib import Path
from typing import Any

from core.anomaly import AnomalyEngine
from core.anomaly.config import DETECTOR_VERSION

log = logging.getLogger(__name__)
FORMAT = 1


def _header(engine: AnomalyEngine, position: int) -> dict[str, Any]:
    return {"format": FORMAT, "position": position, "detectors": DETECTOR_VERSION,
            "config": dataclasses.asdict(engine.config)}


def save(path: Path, engine: AnomalyEngine, position: int) -> None:
    """Write the detectors' state for `position` atomically (temporary file, fsync, rename)."""
    header = json.dumps(_header(engine, position), sort_keys=True).encode()
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(header + b"\n")
        pickle.dump(engine.state(), f, protocol=pickle.HIGHEST_PROTOCOL)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def restore(path: Path, engine: AnomalyEngine, position: int) -> bool:
    """Load the state saved for `position` into `engine`; False (engine untouched) when there is
    no checkpoint, or it is for another position, version or configuration, or unreadable."""
    try:
        with open(path, "rb") as f:
            header = json.loads(f.readline())
            if header != json.loads(json.dumps(_header(engine, position))):
                log.info("detector checkpoint %s is for position %s (detectors %s), not %d:"
                         " rebuilding", path, header.get("position"), header.get("detectors"),
                         position)
                return False
            state = pickle.load(f)
        engine.resume(state)
    except FileNotFoundError:
        return False
    except (ValueError, EOFError, pickle.UnpicklingError, AttributeError, TypeError) as exc:
        log.warning("detector checkpoint %s unusable (%s): rebuilding", path, exc)
        return False
    return True
