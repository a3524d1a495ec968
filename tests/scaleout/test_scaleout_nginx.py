"""Three collectors behind nginx, one SIGKILLed mid-load: every 202'd sheet is counted once."""

from __future__ import annotations

import os
import random
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.helpers import campaign_definition, sheet, unavailable
from tests.integration.distributed_stack import Role, Stack, _answers, wait_until
from tests.integration.embedded_server import free_port
from tests.scaleout.load import clickhouse_counts, discard, drive, raw_records, valid_counts

pytestmark = pytest.mark.integration
SHEETS = 3000
COLLECTORS = 3
LINKS = {"Gd7kQ2xP": "gd-cyber", "Gx1aB2cD": "gx-net", "Sh9zY8xW": "sh-uni"}


class Nginx:
    """infra/nginx/start.sh on a free port with a prefix of its own (not /etc/nginx)."""

    def __init__(self, upstreams: list[str], data_dir: Path) -> None:
        self.port = free_port()
        self.env = {**os.environ, "SURVEY_NGINX_PORT": str(self.port),
                    "SURVEY_NGINX_UPSTREAMS": " ".join(upstreams),
                    "SURVEY_NGINX_WORKERS": "1",
                    "SURVEY_INFRA_DATA": str(data_dir), "SURVEY_INFRA_TIMEOUT": "30"}
        self.home = data_dir / f"nginx-{self.port}"
        self.url = f"http://127.0.0.1:{self.port}"

    def _script(self, action: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(ROOT / "infra" / "nginx" / f"{action}.sh"), *args],
                              env=self.env, capture_output=True, text=True, timeout=300)

    def start(self) -> Nginx:
        result = self._script("start")
        if result.returncode != 0:
            message = f"infra/nginx/start.sh failed: {result.stderr[-3000:]}"
            unavailable(message)
        assert result.stdout.strip().splitlines()[-1] == self.url
        return self

    def stop(self) -> None:
        result = self._script("stop")  # flushes the access log; --wipe after reading it
        assert result.returncode == 0, result.stderr

    def wipe(self) -> None:
        self._script("stop", "--wipe")

    def access_log(self) -> list[str]:
        return (self.home / "logs" / "access.log").read_text().splitlines()


@pytest.fixture(scope="module")
def stack(scaleout_stack: Callable[..., Stack]) -> Iterator[Stack]:
    s = scaleout_stack()
    migrated = s.run("migrate")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    s.role("api", "--port", str(s.api_port))
    s.start_worker()
    for i in range(1, COLLECTORS + 1):
        s.role("collector", "--port", str(free_port()), key=f"collector-{i}")
    for key, role in s.roles.items():
        if key.startswith("collector") or key == "api":
            port = role.args[role.args.index("--port") + 1]

            def ready(role: Role = role, port: str = port) -> bool:
                return role.check_alive() and _answers(f"http://127.0.0.1:{port}/readyz")

            wait_until(f"{key} ready", ready, 90)
    s.wait_worker_ready(90)
    yield s
    discard(s)


def test_sigkilled_collector_behind_nginx_loses_nothing_and_counts_once(
    stack: Stack, tmp_path: Path
) -> None:
    collectors = [stack.roles[f"collector-{i}"] for i in range(1, COLLECTORS + 1)]
    upstreams = [f"127.0.0.1:{c.args[c.args.index('--port') + 1]}" for c in collectors]
    nginx = Nginx(upstreams, tmp_path).start()
    try:
        campaign = "c-nginx"
        assert stack.define(campaign_definition(campaign)).status_code == 200
        # Every collector's registry follower must know the campaign before the load starts.
        stack.collector_url = nginx.url
        for upstream in upstreams:
            stack.collector_url = f"http://{upstream}"
            stack.post_until_taken(sheet(campaign, "NoSuch12"), 20)
        stack.collector_url = nginx.url
        probes = 3

        bodies = [sheet(campaign, random.choice(list(LINKS))) for _ in range(SHEETS)]
        expected = dict.fromkeys(LINKS.values(), 0)
        for body in bodies:
            expected[LINKS[body["link_code"]]] += 1
        victim = collectors[1]
        killed_at: list[float] = []

        def kill_one() -> None:
            victim.kill()  # SIGKILL: requests it had taken die with it, unanswered
            killed_at.append(time.monotonic())

        started = time.monotonic()
        result = drive(f"{nginx.url}/v1/submissions", bodies, midway=kill_one,
                       midway_after=SHEETS // 3)
        load_s = time.monotonic() - started
        assert killed_at and not victim.alive()
        assert len(result.acked) == SHEETS
        assert len(set(result.acked)) == SHEETS

        try:
            wait_until("every sheet counted",
                       lambda: valid_counts(stack, campaign) == expected, 120, 0.5)
        except TimeoutError:
            assert valid_counts(stack, campaign) == expected
        time.sleep(1.5)  # late duplicates would show now
        assert valid_counts(stack, campaign) == expected
        # The independent count: straight from ClickHouse, one row per 202'd sheet.
        rows, distinct = clickhouse_counts(stack, campaign)
        assert (rows, distinct) == (SHEETS + probes, SHEETS + probes)
        for sid in random.sample(result.acked, 20):
            assert stack.status(campaign, sid).json()["status"] == "accepted"
        appended = raw_records(stack)
        assert appended >= SHEETS + probes
        reconciled = stack.run("reconcile")
        assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    finally:
        nginx.stop()
    lines = nginx.access_log()
    # nginx saw the dead collector fail and passed the request to another one (", " separates
    # the upstreams one request went through).
    dead = upstreams[1]
    passed_on = [line for line in lines if f"upstream={dead}, " in line]
    assert passed_on, "no request was passed on from the killed collector"
    print(f"\nnginx: {len(lines)} requests, {len(passed_on)} passed on from the killed "
          f"collector; client resends {dict(result.retried)}; raw records {appended} for "
          f"{SHEETS + probes} sheets; load {load_s:.1f} s")
    nginx.wipe()
    # The surviving collectors still answer directly.
    for upstream in (upstreams[0], upstreams[2]):
        assert httpx.get(f"http://{upstream}/healthz", timeout=5).status_code == 200


class DropAfterRequest:
    """A stand-in for a collector that dies after it took a request: it reads the whole POST,
    then closes the connection without an answer (as a collector SIGKILLed after its append)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.requests = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                match = re.search(rb"(?i)content-length: *(\d+)", head)
                length = int(match.group(1)) if match else 0
                while len(body) < length:
                    body += conn.recv(65536)
                self.requests += 1

    def close(self) -> None:
        self.sock.close()


def test_a_post_the_collector_took_but_never_answered_is_passed_on(
    stack: Stack, tmp_path: Path
) -> None:
    """The case `non_idempotent` is for: the request was sent, then the upstream failed. nginx
    passes it on (instead of a 502) because resending a sheet with its submission_id is safe."""
    dropper = DropAfterRequest()
    alive = stack.roles["collector-1"]
    collector = f"127.0.0.1:{alive.args[alive.args.index('--port') + 1]}"
    nginx = Nginx([f"127.0.0.1:{dropper.port}", collector], tmp_path).start()
    try:
        campaign = "c-nginx"  # defined by the test above, known to every collector
        bodies = [sheet(campaign, random.choice(list(LINKS))) for _ in range(20)]
        with httpx.Client(timeout=30) as client:
            answers = [client.post(f"{nginx.url}/v1/submissions", json=b).status_code
                       for b in bodies]
    finally:
        nginx.stop()
        dropper.close()
    assert answers == [202] * len(bodies)  # no client saw the failure
    assert dropper.requests >= 1  # ... though a collector took a whole POST and died on it
    passed_on = [line for line in nginx.access_log()
                 if f"upstream=127.0.0.1:{dropper.port}, {collector} upstream_status=502, 202"
                 in line]
    assert len(passed_on) == dropper.requests
    nginx.wipe()
