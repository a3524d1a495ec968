"""`serve`'s path to its first verdict, run in a process of its own, reporting which modules it
imported (tests/runtime/test_startup_imports.py).

    python -m tests.runtime.startup_probe DATA_DIR DEFINITION.json SHEET.json

What it runs is what `survey-ingest serve` runs (runtime/serve.py), less the socket: the CLI's
parser (the entry point imports every command module), the embedded runtime's light half and
uvicorn's config (its protocol classes imported): that is where serve listens. Then a campaign
defined and one sheet posted to the collector's ASGI app before the store is open, then the
runtime started (the store opened and the API built behind the collector, then judging) and the
sheet waited for until judged, a clean stop. It prints one JSON line: the modules loaded when
it listened and at the end, the sheet's status code, and whether it was judged.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from commands.cli import build_parser
from commands.common import settings_from
from runtime.embedded import EmbeddedRuntime
from runtime.serve import uvicorn_server
from schemas.campaign import CampaignDefinition
from storage.sql import literal

JUDGED_WITHIN_S = 120.0


async def post(app: Any, body: bytes) -> int:
    """One POST /v1/submissions through the ASGI app; the response's status code."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/submissions", "raw_path": b"/v1/submissions",
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    }
    sent = False
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(int(message["status"]))

    await app(scope, receive, send)
    return status[0] if status else 0


async def main(data_dir: str, definition_file: str, sheet_file: str) -> dict[str, Any]:
    args = build_parser().parse_args(["serve", "--data-dir", data_dir])
    settings = settings_from(args)
    runtime = EmbeddedRuntime(settings, open_later=True)
    uvicorn_server(runtime.app, settings).config.load()
    listening = sorted(sys.modules)
    try:
        definition = CampaignDefinition.model_validate_json(Path(definition_file).read_text())
        await runtime.define_campaign(definition)
        body = Path(sheet_file).read_bytes()
        sheet = json.loads(body)
        status = await post(runtime.app, body)  # taken before the store is open
        await runtime.start()
        deadline = time.monotonic() + JUDGED_WITHIN_S
        key = (sheet["campaign"], sheet["submission_id"])
        while key in runtime.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        judged = key not in runtime.pending
        # Taken before the store opened, judged once: one stored verdict, counted once.
        verdicts = runtime.store._execute(
            f"SELECT count() FROM submissions WHERE submission_id = {literal(key[1])}")
        valid = sum(c.valid for c in runtime.store.unit_counts(key[0]).values())
    finally:
        await runtime.stop()
    return {"status": status, "judged": judged, "verdicts": int(verdicts[0][0]), "valid": valid,
            "listening": listening, "modules": sorted(sys.modules)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:4]))), flush=True)
