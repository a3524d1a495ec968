"""What every verb module shares: the user-facing error, settings from flags, common flags."""

from __future__ import annotations

import argparse
import asyncio
import getpass
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from schemas.settings import Settings

T = TypeVar("T")


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Runs a server's coroutine on uvloop (installed with uvicorn[standard]). uvicorn picks
    uvloop only for a loop it makes itself, and these servers make their own: on asyncio's
    loop a new connection cost about a third more CPU (benchmarks/analysis.md, issue 23)."""
    try:
        import uvloop
    except ImportError:  # uvicorn[standard] brings none on Windows or PyPy
        return asyncio.run(main)
    return uvloop.run(main)


class CliError(Exception):
    """A message for the user; printed without a traceback, exit status 2."""


def local_operator() -> str:
    """Who runs this command, as the audit trail names a command-line write."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        user = "unknown user"
    return f"{user} (command line)"


def settings_from(args: argparse.Namespace) -> Settings:
    """`Settings` from the environment, overridden by whichever connection flags were given."""
    overrides: dict[str, Any] = {}
    for name in ("host", "port", "data_dir", "kafka_bootstrap", "clickhouse_url", "admin_token"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


def add_server_flags(p: argparse.ArgumentParser, port: int | None = None) -> None:
    p.add_argument("--host", help="address to listen on (default 127.0.0.1, env SURVEY_HOST)")
    p.add_argument("--port", type=int, default=port, help="port (env SURVEY_PORT)")


def add_embedded_flags(p: argparse.ArgumentParser) -> None:
    add_server_flags(p)
    p.add_argument("--data-dir", dest="data_dir", type=Path,
                   help="where the embedded log and store live "
                   "(default ./data, env SURVEY_DATA_DIR)")
