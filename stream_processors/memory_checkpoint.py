"""The embedded judging memory's filters on disk, written at a clean stop and read at start.

A checkpoint is valid only for the raw-log position it was written at: the processor's committed
offset at a clean stop. At the next start, if the committed offset is still that position (no
batch was committed since, by this or any process), every stored verdict's keys are in the saved
filters, so they replace the walk over every stored verdict (seconds per million sheets). A
checkpoint of any other position — the process crashed after committing more, or the file is
damaged — is ignored and the memory is rebuilt from the store, as before. A batch stored but not
committed before a stop is redelivered and judged again, adding its keys as it goes.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from pathlib import Path

from core.judge_memory import BoundedJudgeMemory

log = logging.getLogger(__name__)
FORMAT = 1
_LENGTHS = struct.Struct(">QQ")


def save(path: Path, memory: BoundedJudgeMemory, position: int) -> None:
    """Write the filters for `position` atomically (temporary file, fsync, rename)."""
    ids, devices = memory.filter_bytes()
    header = json.dumps({"format": FORMAT, "position": position, "capacity": memory.capacity,
                         "false_positive_rate": memory.false_positive_rate}).encode()
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(header + b"\n" + _LENGTHS.pack(len(ids), len(devices)) + ids + devices)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def restore(path: Path, memory: BoundedJudgeMemory, position: int) -> bool:
    """Load the filters saved for `position` into `memory`; False (memory untouched) when there
    is no checkpoint, or it is for another position or shape, or it cannot be read."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False
    try:
        header_line, _, rest = data.partition(b"\n")
        header = json.loads(header_line)
        if header != {"format": FORMAT, "position": position, "capacity": memory.capacity,
                      "false_positive_rate": memory.false_positive_rate}:
            log.info("judging memory checkpoint %s is for %s, not position %d: rebuilding",
                     path, header, position)
            return False
        n_ids, n_devices = _LENGTHS.unpack_from(rest)
        body = rest[_LENGTHS.size:]
        if len(body) != n_ids + n_devices:
            raise ValueError(f"{len(body)} bytes of filters, expected {n_ids + n_devices}")
        memory.restore_filters(body[:n_ids], body[n_ids:])
    except (ValueError, struct.error) as exc:
        log.warning("judging memory checkpoint %s unusable (%s): rebuilding", path, exc)
        return False
    return True
