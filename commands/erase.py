"""`survey-ingest erase`: delete stored verdicts of a campaign (erasure requests, retention).

An erased sheet leaves nothing behind in the store (Store.erase, storage/upkeep.py): its
verdicts (`submissions`), its review rows (`review_sheets`, `review_overrides`) and its id in
any finding's samples are deleted, and every count table (`unit_counts`, `link_hour_counts`,
`answer_counts`, `device_firsts`) is rebuilt from the remaining verdicts over the days the sheet
was in, so the counts move accordingly and `reconcile` stays clean. Deletion is
`ALTER TABLE ... DELETE`, a ClickHouse mutation (chDB, and ClickHouse since 18.12, so the
18.16 server we support too); mutations run in the background on a server, so the command
waits (bounded) until `system.mutations` shows them done. No writer may run meanwhile.

What it does not touch:
- the raw log: it is erased by its retention (Kafka `retention.ms` on the raw topic). The
  embedded file log has no retention yet: its segments are read by offset from the start, so
  removing old segment files is not supported; retire the whole data dir after the campaign.
  Until the raw record is gone, a `replay` would judge an erased sheet again.

The embedded store belongs to one process at a time: stop `serve` before erasing its data dir.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from commands.progress import progress_bar
from core.judge import device_hash
from core.progress import SILENT, Progress
from schemas.settings import Settings
from storage import SqlStore, open_store
from storage.sql import literal
from stream_processors import detector_checkpoint

CAMPAIGN_TZ = ZoneInfo("Asia/Shanghai")


def add_command(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "erase",
        help="delete stored verdicts; see README 'Privacy and erasure'",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--campaign", required=True)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--submission-id", dest="submission_id", help="one answer sheet")
    which.add_argument(
        "--device-id", dest="device_id",
        help="every sheet from this device: the raw id as the answering page sent it "
        "(hashed here with SURVEY_HASH_KEY), or its stored hash prefixed with 'h:'",
    )
    which.add_argument(
        "--before", type=dt.date.fromisoformat,
        help="every sheet received before this date (YYYY-MM-DD, Asia/Shanghai)",
    )
    p.add_argument("--data-dir", dest="data_dir", type=Path,
                   help="the embedded data dir (instance stopped; default ./data)")
    p.add_argument("--clickhouse", action="store_true",
                   help="erase on the ClickHouse server of SURVEY_CLICKHOUSE_URL instead")
    p.add_argument("--dry-run", action="store_true", help="only count what would be deleted")


def where_clause(
    campaign: str,
    *,
    hash_key: str,
    submission_id: str | None = None,
    device_id: str | None = None,
    before: dt.date | None = None,
) -> str:
    """The rows to erase; exactly one of submission_id, device_id, before."""
    if [submission_id, device_id, before].count(None) != 2:
        raise ValueError("give exactly one of submission_id, device_id, before")
    clause = f"campaign = {literal(campaign)}"
    if submission_id is not None:
        return f"{clause} AND submission_id = {literal(submission_id)}"
    if device_id is not None:
        hashed = device_hash(hash_key, device_id)
        if not hashed:
            raise ValueError("an empty device id matches nothing")
        return f"{clause} AND device_hash = {literal(hashed)}"
    assert before is not None
    midnight = dt.datetime.combine(before, dt.time(), CAMPAIGN_TZ)
    return f"{clause} AND received_at < {literal(midnight)}"


def erase(store: SqlStore, campaign: str, where: str, *, dry_run: bool = False,
          progress: Progress = SILENT) -> int:
    """Delete the sheets matching `where` everywhere they are kept; returns how many verdicts
    there were (Store.erase: rows, review rows, finding samples; counts rebuilt over their days)."""
    return store.erase(campaign, where, dry_run=dry_run, progress=progress)


def run(args: argparse.Namespace, settings: Settings) -> int:
    where = where_clause(
        args.campaign, hash_key=settings.hash_key, submission_id=args.submission_id,
        device_id=args.device_id, before=args.before,
    )
    if args.clickhouse:
        url = settings.clickhouse_url
    else:
        chdb_dir = Path(settings.data_dir).resolve() / "chdb"
        if not chdb_dir.is_dir():
            print(f"survey-ingest: no embedded store at {chdb_dir}", file=sys.stderr)
            return 2
        url = f"chdb://{chdb_dir}"
    store = open_store(url)
    try:
        with progress_bar(settings) as progress:
            deleted = erase(store, args.campaign, where, dry_run=args.dry_run, progress=progress)
    finally:
        store.close()
    if not args.clickhouse and not args.dry_run:
        # The detectors' checkpoint names sheets (samples of a finding): without it the next
        # start rebuilds them from the store, which no longer has the erased ones.
        (Path(settings.data_dir).resolve() / detector_checkpoint.FILE_NAME).unlink(
            missing_ok=True)
    print(json.dumps({
        "campaign": args.campaign, "matched": deleted, "deleted": 0 if args.dry_run else deleted,
        "store": "clickhouse" if args.clickhouse else "embedded",
        "note": "the raw log is erased by its retention; counts rebuilt without the erased sheets",
    }))
    return 0
