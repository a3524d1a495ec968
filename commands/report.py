"""`survey-ingest report`: the command that reads the store and the registry, then writes
report.html and report.pdf."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from core.registry import Registry
from runtime.registry import (
    RegistryUnavailable,
    from_campaign_file,
    from_data_dir,
    from_topic,
)
from schemas.settings import Settings

# Heavy imports (matplotlib, jieba, the store adapters) wait for `run`: `add_command` is called
# for every command line the CLI parses.


def add_command(sub: Any) -> None:
    p = sub.add_parser(
        "report", help="statistical report (report.html, report.pdf) of a campaign or a region",
        description="Builds a report from the store: the chDB store of --data-dir (the "
        "embedded instance must be stopped), or the ClickHouse server of --clickhouse-url.",
    )
    p.add_argument("--campaign", required=True, help="campaign id")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--province", help="only this province (by id); default: whole campaign")
    where.add_argument("--work-region", dest="work_region", help="only this work region (by id)")
    p.add_argument("--out", required=True, type=Path, help="directory to write the report into")
    store = p.add_mutually_exclusive_group()
    store.add_argument("--data-dir", dest="data_dir", type=Path,
                       help="embedded data dir (default ./data, env SURVEY_DATA_DIR)")
    store.add_argument("--clickhouse-url", dest="clickhouse_url",
                       help="clickhouse://host:port/database: read a ClickHouse server instead")
    p.add_argument("--kafka-bootstrap", dest="kafka_bootstrap",
                   help="with --clickhouse-url: where the registry topic is (env "
                        "SURVEY_KAFKA_BOOTSTRAP)")
    p.add_argument("--campaign-file", dest="campaign_file", type=Path,
                   help="take units, targets and questions from this file, not the registry")


def _registry(args: argparse.Namespace, settings: Settings) -> Registry:
    if args.campaign_file is not None:
        return from_campaign_file(args.campaign_file)
    if args.clickhouse_url:
        return from_topic(settings)
    return from_data_dir(settings.data_dir)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from reports.build import ReportError, build_report_from_store
    from reports.queries import Scope
    from reports.render import write_report
    from storage import open_store

    started = time.monotonic()
    try:
        registry = _registry(args, settings)
        state = registry.get(args.campaign)
        if state is None:
            raise ReportError(f"unknown campaign {args.campaign!r}")
        scope = Scope(args.campaign, province=args.province, work_region=args.work_region)
        url = args.clickhouse_url or f"chdb://{Path(settings.data_dir).resolve() / 'chdb'}"
        try:
            store = open_store(url)
        except Exception as exc:  # an unreachable server or a busy chDB directory
            raise RegistryUnavailable(f"cannot open the store {url}: {exc}") from exc
        with store:
            data = build_report_from_store(store, state, scope)
        written = write_report(data, args.out)
    except (ReportError, RegistryUnavailable) as exc:
        print(f"survey-ingest report: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({
        "campaign": args.campaign, "scope": data.scope_label, "sample_size": data.total,
        "valid": data.valid, "rejected": data.rejected, "test": data.test,
        "html": str(written.html), "pdf": str(written.pdf), "pages": written.pages,
        "seconds": round(time.monotonic() - started, 2),
    }, ensure_ascii=False))
    return 0
