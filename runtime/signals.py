"""Signals that stop a server without ending the process before its cleanup (no heavy imports:
the collector's worker processes use it too)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def graceful_signals() -> Iterator[None]:
    """SIGTERM and SIGINT stop the server, then the runtime closes cleanly.

    uvicorn handles both while it serves, and once down re-raises the signal into the handler
    it found: with Python's defaults that ends the process before the runtime closes its logs
    and writes its judging-memory checkpoint. The handler found is this one, which lets the
    re-raise pass.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only
        return
    handled = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in handled}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
