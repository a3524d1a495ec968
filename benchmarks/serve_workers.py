"""Serve one ASGI app from N uvicorn processes sharing a port through SO_REUSEPORT.

    python -m benchmarks.serve_workers MODULE:ATTR [--factory] --workers N --port P

Every target of the collector benchmark runs under this same launcher (uvicorn, uvloop,
httptools, no access log, lifespan off) so that only the app differs between them. Each worker
binds its own SO_REUSEPORT socket, so the kernel spreads connections evenly over the workers
(a shared accept socket, as `uvicorn --workers` uses, can leave one worker with most of wrk's
keep-alive connections). With --factory, ATTR is called once per worker to build the app.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import socket
import subprocess
import sys
import time
from typing import Any


def load(spec: str, factory: bool) -> Any:
    module_name, _, attr = spec.partition(":")
    target = getattr(importlib.import_module(module_name), attr or "app")
    return target() if factory else target


def child(args: argparse.Namespace) -> None:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)
    sock.set_inheritable(True)
    app = load(args.app, args.factory)
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        timeout_keep_alive=30,
        # As the shipped servers (runtime/distributed/serving.py): no X-Forwarded-For
        # rewriting by uvicorn; the collector's own trusted-proxy check decides.
        proxy_headers=False,
    )
    print(f"worker ready on {args.host}:{args.port}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("app")
    parser.add_argument("--factory", action="store_true")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    argv = [
        sys.executable,
        "-m",
        "benchmarks.serve_workers",
        args.app,
        "--child",
        "--host",
        args.host,
        "--port",
        str(args.port),
    ] + (["--factory"] if args.factory else [])
    workers = [subprocess.Popen(argv) for _ in range(args.workers)]
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping and all(w.poll() is None for w in workers):
        time.sleep(0.2)
    for w in workers:
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for w in workers:
        try:
            w.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            w.kill()
            w.wait(5)
    sys.exit(0 if stopping else 1)


if __name__ == "__main__":
    main()
