"""Distributed roles: collector, worker, api, migrate, replay, reconcile."""

from __future__ import annotations

import argparse
from typing import Any

from schemas.settings import Settings


def add_commands(sub: Any) -> None:
    for name, text in (
        ("collector", "HTTP collector appending to Kafka"),
        ("worker", "faust worker: judge, count, sink to ClickHouse"),
        ("api", "read-side API over ClickHouse"),
        ("migrate", "create Kafka topics and apply ClickHouse migrations"),
        ("replay", "re-judge the raw log into fresh projections"),
        ("reconcile", "compare live counts with ClickHouse"),
    ):
        sub.add_parser(name, help=text)


def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    raise SystemExit(f"survey-ingest {args.command}: not available in this build")
