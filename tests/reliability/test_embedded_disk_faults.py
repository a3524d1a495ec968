"""`survey-ingest serve` when its disk fails it: the data directory's filesystem fills up, and a
crash leaves a torn record at the raw log's tail. Each time: no 202 for anything not durably
taken, nothing half-written left in the log, every sheet that got a 202 counted exactly once,
and full service again without anyone's help (space back; a restart)."""

from __future__ import annotations

import concurrent.futures
import errno
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventlog.file_log import FileLog, encode_record
from tests.helpers import campaign_definition, sheet, unavailable
from tests.integration.distributed_stack import wait_until
from tests.integration.embedded_server import EmbeddedServer

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CAMPAIGN = "rel-disk"
UNIT = "gd-cyber"  # the unit sheet()'s default link credits
DISK_SIZE = "160m"  # room for chDB's tables and the logs, and little more
FULL_DETAIL = ("log unavailable: its disk is full, nothing stored; "
               "retry with the same submission_id")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of DISK_SIZE mounted for the test (root, as here and in CI), unmounted after."""
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(where)],
        capture_output=True, text=True, timeout=30,
    )
    if mounted.returncode != 0:
        unavailable(f"the full-disk test needs a small filesystem of its own, and "
                    f"`mount -t tmpfs -o size={DISK_SIZE} tmpfs {where}` was refused "
                    f"(exit {mounted.returncode}: {mounted.stderr.strip()}); run it as root")
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True, timeout=60).returncode:
            subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=60)


def fill(path: Path) -> int:
    """Writes `path` until its filesystem refuses (ENOSPC); returns the bytes it took."""
    written = 0
    with path.open("wb", buffering=0) as f:
        for size in (1 << 20, 4096):
            block = b"\xff" * size
            while True:
                try:
                    written += f.write(block) or 0
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    return written


def post(server: EmbeddedServer, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.base}/v1/submissions", json=body, timeout=20)


def taken(server: EmbeddedServer, body: dict[str, Any]) -> Callable[[], bool]:
    return lambda: post(server, body).status_code == 202


def post_all(server: EmbeddedServer, bodies: list[dict[str, Any]]) -> None:
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda b: post(server, b), bodies))
    assert [r.status_code for r in answers] == [202] * len(bodies), [
        r.text for r in answers if r.status_code != 202][:3]


def valid(server: EmbeddedServer) -> int:
    r = httpx.get(f"{server.base}/v1/campaigns/{CAMPAIGN}/leaderboard",
                  params={"level": "unit"}, timeout=10)
    assert r.status_code == 200, r.text
    return sum(int(row["valid"]) for row in r.json()["rows"] if row["id"] == UNIT)


def wait_valid(server: EmbeddedServer, expected: int, timeout_s: float = 60) -> None:
    try:
        wait_until(f"{expected} sheets counted", lambda: valid(server) == expected,
                   timeout_s, 0.25)
    except TimeoutError:
        assert valid(server) == expected, server.log_tail()


def assert_log_holds_exactly(data_dir: Path, acked: set[str]) -> None:
    """The raw log (server stopped) holds each acknowledged sheet once and nothing else, and no
    torn bytes were left for the open to cut."""
    with FileLog(data_dir / "raw") as raw:
        assert raw.stats.truncated_bytes_on_open == 0, "a torn write was left in the raw log"
        keys = Counter(r.key.decode() for r in raw.read(0, 10**9))
    assert not {k: n for k, n in keys.items() if n > 1}, "a sheet is in the raw log twice"
    assert set(keys) == acked, (sorted(set(keys) - acked)[:5], sorted(acked - set(keys))[:5])


def assert_reconciled(data_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "commands.cli", "reconcile", "--data-dir", str(data_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_full_disk_is_refused_with_503_and_served_again_once_space_returns(
    small_disk: Path,
) -> None:
    """Deliberate break it catches: `FileLog._write_failed` not cutting the part of a failed
    batch that reached the file (no `ftruncate`). The torn record then sits in the segment,
    the next write goes after it, and the log no longer reads back: the processor stops there,
    `serve` never gets ready again and the sheets taken once space returned are never counted."""
    server = EmbeddedServer(small_disk).start(timeout=120)
    acked: set[str] = set()
    try:
        assert server.define(campaign_definition(CAMPAIGN)).status_code == 200
        before = [sheet(CAMPAIGN) for _ in range(40)]
        post_all(server, before)
        acked |= {b["submission_id"] for b in before}
        wait_valid(server, len(acked))

        ballast = small_disk / "ballast"
        print(f"the disk took {fill(ballast)} bytes of ballast")
        refused: list[dict[str, Any]] = []
        for _ in range(200):  # the segment's last page may hold a few more sheets
            body = sheet(CAMPAIGN)
            r = post(server, body)
            if r.status_code == 202:
                acked.add(body["submission_id"])
                continue
            assert r.status_code == 503, r.text
            assert r.json() == {"detail": FULL_DETAIL}
            assert r.headers.get("retry-after") == "1"
            refused.append(body)
            if len(refused) == 1:  # not ready while the log cannot write
                assert httpx.get(f"{server.base}/readyz", timeout=5).status_code == 503
            if len(refused) >= 10:
                break
        assert len(refused) >= 10, f"only {len(refused)} answers 503 on a full disk"

        ballast.unlink()  # space returns
        for body in refused:  # each page sends its sheet again, with the same id
            wait_until("a refused sheet taken once space returned", taken(server, body), 30, 0.25)
            acked.add(body["submission_id"])
        after = [sheet(CAMPAIGN) for _ in range(40)]
        post_all(server, after)
        acked |= {b["submission_id"] for b in after}
        wait_until("ready again", lambda: httpx.get(f"{server.base}/readyz",
                                                    timeout=5).status_code == 200, 30, 0.25)
        wait_valid(server, len(acked))
        for body in refused:
            got = httpx.get(f"{server.base}/v1/campaigns/{CAMPAIGN}/submissions/"
                            f"{body['submission_id']}", timeout=10).json()
            assert got["status"] == "accepted", got
    finally:
        server.stop()
    assert_log_holds_exactly(small_disk, acked)
    assert_reconciled(small_disk)


def test_a_torn_record_at_the_raw_logs_tail_is_cut_at_restart(tmp_path: Path) -> None:
    """SIGKILL, then the half of a record a crash mid-write leaves at the tail of the newest raw
    segment; `serve` starts again, cuts it, counts every sheet that got a 202 once, and takes
    new ones.

    Deliberate break it catches: `segments.recover` not cutting the torn tail. The next append
    then lands after the torn bytes, the processor cannot read past them, and the sheets taken
    after the restart are never counted."""
    data = tmp_path / "data"
    server = EmbeddedServer(data).start(timeout=120)
    try:
        assert server.define(campaign_definition(CAMPAIGN)).status_code == 200
        before = [sheet(CAMPAIGN) for _ in range(60)]
        post_all(server, before)
        wait_valid(server, len(before))
    finally:
        server.kill()

    torn = sheet(CAMPAIGN)
    record = encode_record(torn["submission_id"].encode(),
                           json.dumps({"v": 1, "body": torn}).encode())
    newest = sorted((data / "raw").glob("*.log"))[-1]
    with newest.open("ab") as f:
        f.write(record[: len(record) // 2])

    server = EmbeddedServer(data).start(timeout=120)
    try:
        logged = server.log_path.read_text(errors="replace")
        assert "cutting" in logged, server.log_tail()
        after = [sheet(CAMPAIGN) for _ in range(40)]
        post_all(server, after)
        wait_valid(server, len(before) + len(after))
        lost = httpx.get(f"{server.base}/v1/campaigns/{CAMPAIGN}/submissions/"
                         f"{torn['submission_id']}", timeout=10)
        assert lost.status_code == 404, lost.text  # never acknowledged, never stored
    finally:
        server.stop()
    assert_log_holds_exactly(data, {b["submission_id"] for b in before + after})
    assert_reconciled(data)
