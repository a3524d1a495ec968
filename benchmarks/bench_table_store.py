"""The worker's RocksDB tables alone: RSS of one process driving faust_app's table options.

16 databases (8 partitions x 2 tables) opened with stream_processors.faust_app's bounded options;
per event, what the worker does: a read and a write of a new submission id's fingerprints, a read
and a write of a new device's first submission. Prints RSS, the shared cache's and the
memtables' usage and the disk used every 250,000 events.

    python -m benchmarks.bench_table_store [EVENTS]    (default 2,000,000)
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

from stream_processors import faust_app

MB = 1024 * 1024


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / MB


def main() -> None:
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
    options = faust_app._BoundedRocksDBOptions(
        write_buffer_size=faust_app.TABLE_WRITE_BUFFER_BYTES,
        max_write_buffer_number=faust_app.TABLE_MAX_WRITE_BUFFERS,
        block_cache_size=faust_app.TABLE_CACHE_BYTES,
        use_rocksdict=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-table-store-") as tmp:
        dbs = [options.open(Path(tmp) / f"table-{i}.db") for i in range(16)]
        started = time.monotonic()
        print(f"0 events: RSS {rss_mb():.1f} MB", flush=True)
        for n in range(1, events + 1):
            sid = uuid.uuid4().hex
            partition = random.randrange(8)
            fingerprints, devices = dbs[partition], dbs[8 + partition]
            key = json.dumps(f"c\x1f{sid}").encode()
            fingerprints.get(key)
            fingerprints[key] = json.dumps([uuid.uuid4().hex]).encode()
            device = json.dumps(f"c\x1f{uuid.uuid4().hex}").encode()
            devices.get(device)
            devices[device] = json.dumps(sid).encode()
            if n % 250_000 == 0:
                cache = faust_app._shared["cache"]
                memtables = faust_app._shared["write_buffers"].get_usage()
                disk = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file())
                print(
                    f"{n} events: RSS {rss_mb():.1f} MB, cache {cache.get_usage() / MB:.1f} MB "
                    f"(pinned {cache.get_pinned_usage() / MB:.1f}), memtables "
                    f"{memtables / MB:.1f} MB, disk {disk / MB:.0f} MB, "
                    f"{n / (time.monotonic() - started):,.0f} events/s",
                    flush=True,
                )


if __name__ == "__main__":
    main()
