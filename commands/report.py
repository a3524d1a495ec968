"""`survey-ingest report`: the command that reads the store and the registry, then writes
report.html, report.pdf and report.docx (one scope), or every eligible report (--all-eligible)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from commands.progress import progress_bar
from core.progress import Progress
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
        "report", help="statistical report (report.html, .pdf, .docx) of a campaign, a region or"
        " a topic; or every eligible one (--all-eligible)",
        description="Builds a report from the store: the chDB store of --data-dir (the "
        "embedded instance must be stopped), or the ClickHouse server of --clickhouse-url.",
    )
    p.add_argument("--campaign", required=True, help="campaign id")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--province", help="only this province (by id); default: whole campaign")
    where.add_argument("--work-region", dest="work_region", help="only this work region (by id)")
    where.add_argument("--topic", help="only this topic (专题) of the campaign file (by id)")
    where.add_argument("--all-eligible", dest="all_eligible", action="store_true",
                       help="national, every eligible work region, province and topic, one "
                            "folder each plus index.html; resumable")
    p.add_argument("--workers", type=int, default=2,
                   help="with --all-eligible: processes laying out documents (default 2)")
    p.add_argument("--threshold", type=int, default=None,
                   help="with --all-eligible: valid samples past which a scope gets a report "
                        "(default the campaign notice's 50,000)")
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
    from reports.build import ReportError, build_report_from_store, topic_scope
    from reports.queries import Scope
    from reports.render import write_report
    from storage import open_store

    started = time.monotonic()
    try:
        registry = _registry(args, settings)
        state = registry.get(args.campaign)
        if state is None:
            raise ReportError(f"unknown campaign {args.campaign!r}")
        previous = None
        if state.definition.previous_campaign:
            previous = registry.get(state.definition.previous_campaign)
        url = args.clickhouse_url or f"chdb://{Path(settings.data_dir).resolve() / 'chdb'}"
        try:
            store = open_store(url)
        except Exception as exc:  # an unreachable server or a busy chDB directory
            raise RegistryUnavailable(f"cannot open the store {url}: {exc}") from exc
        if args.all_eligible:
            with store, progress_bar(settings) as progress:
                return _all_eligible(args, store, state, previous, started, progress)
        if args.topic:
            scope = topic_scope(state, args.campaign, args.topic)
        else:
            scope = Scope(args.campaign, province=args.province, work_region=args.work_region)
        with progress_bar(settings) as progress:
            progress.stage("report", 4, "steps")  # figures, html, pdf, docx
            with store:
                data = build_report_from_store(store, state, scope, previous=previous)
            progress.advance()
            written = write_report(data, args.out, progress=progress)
    except (ReportError, RegistryUnavailable) as exc:
        print(f"survey-ingest report: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({
        "campaign": args.campaign, "scope": data.scope_label, "sample_size": data.total,
        "valid": data.valid, "rejected": data.rejected, "test": data.test,
        "index": None if data.index is None else round(data.index.value, 2),
        "html": str(written.html), "pdf": str(written.pdf), "docx": str(written.docx),
        "pages": written.pages, "seconds": round(time.monotonic() - started, 2),
    }, ensure_ascii=False))
    return 0


def _all_eligible(args: argparse.Namespace, store: Any, state: Any, previous: Any,
                  started: float, progress: Progress) -> int:
    from reports.batch import Job, eligible_jobs, run_all
    from reports.build import build_report_from_store, topic_scope
    from reports.eligibility import ELIGIBILITY_THRESHOLD
    from reports.queries import Scope

    threshold = ELIGIBILITY_THRESHOLD if args.threshold is None else args.threshold
    jobs = eligible_jobs(store, state, args.campaign, store.unit_counts(args.campaign),
                         threshold)

    nation_memo: dict[Any, Any] = {}  # the nation's index, once per run, not once per region

    def build(job: Job) -> Any:
        if job.kind == "topic":
            scope = topic_scope(state, args.campaign, job.id)
        else:
            scope = Scope(args.campaign,
                          province=job.id if job.kind == "province" else None,
                          work_region=job.id if job.kind == "work_region" else None)
        return build_report_from_store(store, state, scope, previous=previous,
                                       nation_memo=nation_memo)

    results = run_all(jobs, args.out, build, workers=args.workers, progress=progress)
    print(json.dumps({
        "campaign": args.campaign, "reports": len(results),
        "skipped": sum(1 for r in results if r.get("skipped")),
        "index": str(args.out / "index.html"),
        "seconds": round(time.monotonic() - started, 2),
    }, ensure_ascii=False))
    return 0
