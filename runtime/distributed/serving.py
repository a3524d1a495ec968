"""Serving an ASGI app of a distributed role under uvicorn: in this process, or in N processes.

    python -m runtime.distributed.serving MODULE:FACTORY --host H --port P   (one worker)

Several processes share one port through SO_REUSEPORT, each with a listening socket of its own:
the kernel spreads connections evenly over them. (A single accept socket shared by forked
workers, as `uvicorn --workers` has it, can leave one process with most of the long-lived
keep-alive connections a load balancer opens.) A worker binds only once its app is built, so
the kernel never hands a connection to a process that cannot answer yet.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

import uvicorn

from runtime.signals import graceful_signals
from schemas.settings import Settings
from telemetry.metrics_server import MULTIPROC_ENV

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 20.0  # after the drain (SURVEY_DRAIN_SECONDS)
# Thousands of display screens connect at once after a restart or a broadcast: a connection
# turned away by a full listen queue comes back only after its SYN retry (1 s, then 3 s, ...).
# The kernel caps this at net.core.somaxconn (4096 on current kernels).
LISTEN_BACKLOG = 16384
# A backstop: requests still running this long into a stop are cancelled. The endless ones
# (live screens) are ended at once (DrainingServer.shutdown); a sheet's write waits at most the
# producer's delivery timeout (10 s).
GRACEFUL_SHUTDOWN_S = 60


def uvicorn_config(app: Any, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=host, port=port, lifespan="off", log_level="warning", access_log=False,
        timeout_keep_alive=30, backlog=LISTEN_BACKLOG,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        # The collector decides itself which peers may name the client (SURVEY_TRUSTED_PROXIES);
        # uvicorn's own X-Forwarded-For rewriting, on by default for 127.0.0.1, would let any
        # local peer (a sidecar, another tenant) choose the address the rate limits key on.
        proxy_headers=False,
    )


class DrainingServer(uvicorn.Server):
    """uvicorn, with a drain before the stop: on the first SIGTERM an app that can drain (the
    collector: a `draining` attribute) answers /readyz 503 for `drain_s` seconds while it goes
    on serving, so a load balancer or Kubernetes takes it out of rotation first; then uvicorn's
    own shutdown lets the requests in flight finish. SIGINT stops now; a repeated SIGTERM does
    not: under systemd's default KillMode (control-group) each worker gets one from systemd and
    one forwarded by its parent (`serve_workers`)."""

    def __init__(self, config: uvicorn.Config, drain_s: float,
                 end_streams: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self.drain_s = drain_s
        self.end_streams = end_streams
        self._stop_at: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        app = self.config.app
        if sig == signal.SIGTERM and self._stop_at is not None:
            log.info("SIGTERM again while draining: the drain goes on (SIGINT stops now)")
            return
        if sig == signal.SIGTERM and self.drain_s > 0 and hasattr(app, "draining"):
            app.draining = True
            self._stop_at = time.monotonic() + self.drain_s
            log.info("draining for %.1f s before stopping", self.drain_s)
            return
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn waits for every open response to finish: the app's endless ones (live
        # screens' event streams) are ended first, or the process never stops.
        if self.end_streams is not None:
            self.end_streams()
        await super().shutdown(sockets)

    async def on_tick(self, counter: int) -> bool:
        if self._stop_at is not None and time.monotonic() >= self._stop_at:
            self.should_exit = True
        return await super().on_tick(counter)


async def serve_http(app: Any, host: str, port: int, drain_s: float = 0.0,
                     end_streams: Callable[[], None] | None = None) -> None:
    """Serve `app` in this process until SIGINT/SIGTERM (after a drain, see DrainingServer);
    returns then, so the caller's cleanup runs (graceful_signals: uvicorn would otherwise
    re-raise the signal into Python's default handler and end the process first)."""
    with graceful_signals():
        await DrainingServer(uvicorn_config(app, host, port), drain_s, end_streams).serve()


def reuseport_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(True)
    return sock


def serve_workers(
    factory: str, host: str, port: int, workers: int, env: Mapping[str, str], banner: str = ""
) -> int:
    """Run `workers` processes, each `factory()` served on its own SO_REUSEPORT socket, until
    SIGINT/SIGTERM (exit 0) or until one of them exits on its own (the others are stopped, exit
    1: a supervisor such as systemd restarts the whole collector).

    Their metrics are added up (PROMETHEUS_MULTIPROC_DIR): the directory given in the environment,
    emptied first, or a temporary one removed at the end."""
    child_env = {**os.environ, **env}
    own_dir = None
    if not child_env.get(MULTIPROC_ENV):
        own_dir = tempfile.mkdtemp(prefix="survey-metrics-")
        child_env[MULTIPROC_ENV] = own_dir
    _empty_metrics_dir(child_env[MULTIPROC_ENV])
    argv = [sys.executable, "-m", "runtime.distributed.serving", factory,
            "--host", host, "--port", str(port)]
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs = [subprocess.Popen(argv, env=child_env) for _ in range(workers)]
        if banner:
            print(banner, flush=True)
        while not stopping and all(p.poll() is None for p in procs):
            time.sleep(0.2)
        if not stopping:
            dead = [p for p in procs if p.poll() is not None]
            log.error("collector worker %s exited with %s; stopping the others",
                      dead[0].pid, dead[0].returncode)
        return 0 if stopping else 1
    finally:
        _stop_all(procs)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)


def _stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)  # uvicorn finishes the requests in flight, then exits
    deadline = time.monotonic() + Settings().drain_seconds + STOP_TIMEOUT_S
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


def _empty_metrics_dir(path: str) -> None:
    # Files left by an earlier run would be added to this run's counters.
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(path, name))


def load_factory(spec: str) -> Callable[[], Any]:
    module_name, _, attr = spec.partition(":")
    factory: Callable[[], Any] = getattr(importlib.import_module(module_name), attr)
    return factory


def _worker_main() -> None:
    parser = argparse.ArgumentParser(description="one worker process of serve_workers()")
    parser.add_argument("factory")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    _exit_with_parent()
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("kafka", "aiokafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    app = load_factory(args.factory)()
    sock = reuseport_socket(args.host, args.port)
    server = DrainingServer(uvicorn_config(app, args.host, args.port), Settings().drain_seconds)
    with graceful_signals():
        server.run(sockets=[sock])


def _exit_with_parent() -> None:
    """SIGTERM this worker if its supervisor dies without stopping it (e.g. SIGKILL), so no
    orphan keeps the port. Linux only (prctl PR_SET_PDEATHSIG); elsewhere a no-op."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the supervisor was gone before the call took effect
            os.kill(os.getpid(), signal.SIGTERM)


if __name__ == "__main__":
    _worker_main()
