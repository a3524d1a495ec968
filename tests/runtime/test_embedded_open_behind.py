"""`serve` listens before its store is open (runtime/embedded.py: open_behind): what a request
gets meanwhile, when the open fails, and when a stop comes before judging has caught up.

Catches: probes that hang until the store is open (a liveness probe timing out through a long
migration), requests left waiting for ever when the open fails (the process then hangs on
shutdown too), and a stop that still runs judging's whole catch-up (the detectors' and the
memory's rebuild) before the process may exit.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from commands.cli import build_parser
from commands.common import settings_from
from runtime import embedded
from runtime.embedded import EmbeddedRuntime


def runtime_in(tmp_path: Path) -> EmbeddedRuntime:
    args = build_parser().parse_args(["serve", "--data-dir", str(tmp_path / "data")])
    return EmbeddedRuntime(settings_from(args), open_later=True)


async def get(app: Any, path: str) -> tuple[int, dict[str, Any]]:
    """One GET through the ASGI app: (status, JSON body)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
        "headers": [(b"host", b"127.0.0.1:8000")],
    }
    status: list[int] = []
    body: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(int(message["status"]))
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))

    await app(scope, receive, send)
    return status[0], json.loads(b"".join(body) or b"{}")


def test_probes_answer_at_once_and_other_requests_wait_for_the_api(tmp_path: Path) -> None:
    runtime = runtime_in(tmp_path)
    release = threading.Event()
    real_open = runtime.open

    def slow_open() -> None:
        assert release.wait(60)
        real_open()

    runtime.open = slow_open  # type: ignore[method-assign]

    async def scenario() -> None:
        opening = asyncio.create_task(runtime.open_behind())
        try:
            assert await asyncio.wait_for(get(runtime.app, "/healthz"), 5) == (
                200, {"status": "ok"})
            status, body = await asyncio.wait_for(get(runtime.app, "/readyz"), 5)
            assert status == 503 and "opened" in body["detail"]
            waiting = asyncio.create_task(get(runtime.app, "/v1/campaigns/nope/leaderboard"))
            await asyncio.sleep(0.3)
            assert not waiting.done()  # waits for the API rather than a 503
            release.set()
            await asyncio.wait_for(opening, 120)
            status, _ = await asyncio.wait_for(waiting, 30)
            assert status != 503  # answered by the API itself
        finally:
            release.set()
            await runtime.stop()

    asyncio.run(scenario())


def test_a_failed_open_answers_the_waiting_requests_503(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = runtime_in(tmp_path)
    release = threading.Event()

    def failing_open() -> None:
        assert release.wait(60)
        raise RuntimeError("no store here")

    runtime.open = failing_open  # type: ignore[method-assign]
    monkeypatch.setattr(embedded, "API_WAIT_S", 60.0)

    async def scenario() -> None:
        opening = asyncio.create_task(runtime.open_behind())
        waiting = asyncio.create_task(get(runtime.app, "/v1/campaigns/nope/leaderboard"))
        await asyncio.sleep(0.3)
        release.set()
        with pytest.raises(RuntimeError, match="no store here"):
            await asyncio.wait_for(opening, 30)
        status, body = await asyncio.wait_for(waiting, 5)
        assert status == 503 and "could not be opened" in body["detail"]
        status, body = await asyncio.wait_for(get(runtime.app, "/readyz"), 5)
        assert status == 503 and "could not be opened" in body["detail"]
        await runtime.stop()

    asyncio.run(scenario())


def test_a_stop_before_the_catch_up_ends_judging_without_a_checkpoint(tmp_path: Path) -> None:
    runtime = runtime_in(tmp_path)

    async def scenario() -> None:
        await runtime.open_behind()
        rebuilt: list[str] = []
        runtime.findings_step.rebuild = lambda *_, **__: rebuilt.append("x") or 0  # type: ignore[method-assign]
        runtime._stopping.set()  # the stop arrives while the counts are being repaired
        await asyncio.wait_for(runtime._judge(), 60)
        assert not rebuilt  # the detectors' rebuild never started
        await runtime.stop()

    asyncio.run(scenario())
    assert not runtime.memory_checkpoint.exists()
    assert not runtime.detector_checkpoint.exists()  # never written from a cut-short catch-up
