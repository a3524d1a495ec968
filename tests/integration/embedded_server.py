"""Runs `survey-ingest serve` as a real subprocess for tests, with bounded waits."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.helpers import stop_process, wait_ready

ADMIN_TOKEN = "test-admin-token"
# The admin bearer header: /metrics and the scoped reads need a token (CONTRACT §7).
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedServer:
    def __init__(
        self, data_dir: Path, port: int | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "SURVEY_ADMIN_TOKEN": ADMIN_TOKEN, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"serve-{self.port}.log"

    def start(self, timeout: float = 60.0) -> EmbeddedServer:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it for its lifetime
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "commands.cli",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_ready(self.proc, f"{self.base}/readyz", "serve", timeout, self.log_tail, self.kill)
        return self

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self, timeout: float = 30.0) -> None:
        stop_process(self.proc, timeout)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def define(self, definition: dict[str, object]) -> httpx.Response:
        return httpx.put(
            f"{self.base}/v1/admin/campaigns/{definition['campaign']}",
            json=definition,
            headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=30,
        )
