"""A collector worker's drain and the signals that end it, on real worker processes
(`python -m runtime.distributed.serving`, as `serve_workers` starts them) serving a stand-in app
(tests/runtime/drain_app.py: no Kafka, so the test costs seconds, not a stack).

Under systemd's default KillMode (control-group) every worker gets SIGTERM twice: once from
systemd, once forwarded by its parent. The second must not cut the drain short; SIGINT (Ctrl-C)
still stops at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.distributed_stack import wait_until
from tests.integration.embedded_server import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DRAIN_S = 15.0  # long enough that a loaded 2-core machine still sees the middle of it


class Worker:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    def readyz(self) -> int:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code
        except httpx.HTTPError:
            return 0

    def send(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[[float], Worker]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(drain_s: float) -> Worker:
        port = free_port()
        log = tmp_path / f"worker-{port}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "runtime.distributed.serving",
                 "tests.runtime.drain_app:build", "--host", "127.0.0.1", "--port", str(port)],
                cwd=ROOT, env={**os.environ, "SURVEY_DRAIN_SECONDS": str(drain_s)},
                stdout=out, stderr=subprocess.STDOUT,
            )
        started.append(proc)
        worker = Worker(proc, f"http://127.0.0.1:{port}", log)
        wait_until("worker serving", lambda: worker.readyz() == 200 or proc.poll() is not None,
                   60)
        assert proc.poll() is None, log.read_text(errors="replace")
        return worker

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_a_second_sigterm_does_not_cut_the_drain_short(
    start_worker: Callable[[float], Worker],
) -> None:
    """Catches a worker that stops at once on the second SIGTERM of a systemd stop (the one its
    parent forwards): it would close its port while the balancer still sends to it."""
    worker = start_worker(DRAIN_S)
    worker.send(signal.SIGTERM)
    signalled = time.monotonic()
    wait_until("/readyz 503 while draining", lambda: worker.readyz() == 503, DRAIN_S / 3)
    worker.send(signal.SIGTERM)  # the parent's forward
    # Well inside the drain, after the second signal: still serving, still draining.
    time.sleep(max(0.0, signalled + DRAIN_S / 2 - time.monotonic()))
    assert worker.readyz() == 503, worker.log.read_text(errors="replace")
    worker.proc.wait(DRAIN_S + 30)
    assert time.monotonic() - signalled >= DRAIN_S * 0.9  # it waited out the drain
    assert worker.proc.returncode == 0, worker.log.read_text(errors="replace")
    assert worker.readyz() == 0  # closed


def test_sigint_during_a_drain_stops_at_once(start_worker: Callable[[float], Worker]) -> None:
    """Ctrl-C still ends a drain: SIGTERM starts a long one, SIGINT ends it well before."""
    worker = start_worker(600.0)
    worker.send(signal.SIGTERM)
    wait_until("/readyz 503 while draining", lambda: worker.readyz() == 503, 10)
    worker.send(signal.SIGINT)
    worker.proc.wait(30)  # TimeoutExpired here: SIGINT was ignored like a repeated SIGTERM
    assert worker.proc.returncode == 0, worker.log.read_text(errors="replace")
