"""A stand-in for the collector's app in signal tests: it can drain (the `draining` attribute
runtime/distributed/serving.py looks for) and answers /readyz 503 while it does. No Kafka."""

from __future__ import annotations

from typing import Any


class DrainApp:
    def __init__(self) -> None:
        self.draining = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        status = 503 if self.draining else 200
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"draining" if self.draining else b"ok"})


def build() -> DrainApp:
    return DrainApp()
