"""Every eligible report of a campaign in one command: time and peak memory of
`survey-ingest report --all-eligible` over N generated sheets in the embedded (chDB) store.

The store is filled on the database side (benchmarks.bench_queries.fill_sql: the example
campaign's links by popularity, 85% accepted) with answers to every closed question of the
example questionnaire; the registry holds the example campaign with three topics. Then the
command runs once from empty (national, eligible work regions, provinces and topics: figures in
the command's process, documents in 2 worker processes) and once more (resumed: everything
already there is skipped). Peak memory is the largest resident set of any one process of the
command (getrusage of the waited-for children), the parent's included.

    python -m benchmarks.bench_reports [--quick] [--rows N] [--out FILE]
"""

# ruff: noqa: E501 - the generating SQL reads better unwrapped
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import support as s

FULL_ROWS = 10_000_000
QUICK_ROWS = 200_000
CHUNK = 2_000_000

# Every closed question of the example questionnaire, from the row hash h (scale items lean
# on the respondent province's first digit, so provinces differ in satisfaction).
ANSWERS = """concat('{"q1": ', toString(1 + (bitShiftRight(h, 44) + toUInt64OrZero(substring(respondent_province, 1, 1))) % 5),
  ', "q10": ', ['["网络诈骗"]', '["账号被盗", "网络诈骗"]', '["骚扰电话和垃圾短信"]', '["都没有遇到"]'][1 + bitShiftRight(h, 9) % 4],
  ', "q11": ', ['["个人信息保护"]', '["打击电信网络诈骗", "网络谣言治理"]'][1 + bitShiftRight(h, 11) % 2],
  ', "q2": ', toString(1 + bitShiftRight(h, 47) % 5), ', "q3": ', toString(1 + bitShiftRight(h, 50) % 5),
  ', "q4": ', toString(1 + bitShiftRight(h, 13) % 5), ', "q5": ', toString(1 + bitShiftRight(h, 16) % 5),
  ', "q6": ', toString(1 + bitShiftRight(h, 19) % 5), ', "q7": ', toString(1 + bitShiftRight(h, 22) % 5),
  ', "q8": ', ['"1小时以内"', '"1至3小时"', '"3至5小时"', '"5小时以上"'][1 + bitShiftRight(h, 25) % 4],
  ', "q9": ', ['"手机"', '"手机"', '"手机"', '"台式电脑"', '"笔记本电脑"', '"平板电脑"', '"其他"'][1 + bitShiftRight(h, 28) % 7],
  '}') AS answers_json"""


def fill(data_dir: Path, rows: int) -> tuple[float, str]:
    from benchmarks.bench_queries import fill_sql
    from storage.chdb_store import ChdbStore
    from tests.reports.support import example_definition

    definition = example_definition()
    with ChdbStore(data_dir / "chdb") as store:
        store.migrate()
        started = time.perf_counter()
        for start in range(0, rows, CHUNK):
            sql = fill_sql(definition, start, min(CHUNK, rows - start))
            sql = re.sub(r"concat\('\{\"q1\":.*?AS answers_json", ANSWERS, sql, flags=re.S)
            store._execute(sql)
            s.log(f"reports: {min(rows, start + CHUNK):,} rows")
        return time.perf_counter() - started, definition.campaign


def write_registry(data_dir: Path) -> None:
    from eventlog.file_log import FileLog
    from schemas.events import CampaignDefined, encode_event
    from tests.reports.support import example_definition, with_topics

    definition = with_topics(example_definition())
    log = FileLog(data_dir / "registry", fsync=False)
    event = CampaignDefined(campaign=definition.campaign, definition=definition,
                            defined_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    asyncio.run(log.append(definition.campaign.encode(), encode_event(event)))
    log.close()


def run_command(data_dir: Path, out: Path, campaign: str, threshold: int | None
                ) -> dict[str, Any]:
    args = [sys.executable, "-m", "commands.cli", "report", "--campaign", campaign,
            "--all-eligible", "--out", str(out), "--data-dir", str(data_dir), "--workers", "2"]
    if threshold is not None:
        args += ["--threshold", str(threshold)]
    started = time.perf_counter()
    done = subprocess.run(args, cwd=s.ROOT, capture_output=True, text=True, timeout=7200)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"report --all-eligible failed: {done.stderr[-2000:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(peak_kb / 1024, 1), **summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--threshold", type=int,
                        help="default: 50,000 scaled to the rows (as many reports as at 10 M)")
    args = parser.parse_args()
    rows = args.rows or (QUICK_ROWS if args.quick else FULL_ROWS)
    # Small runs lower the threshold in proportion so that as many scopes are eligible.
    threshold = args.threshold or (None if rows >= FULL_ROWS
                                   else max(1, 50_000 * rows // FULL_ROWS))
    with tempfile.TemporaryDirectory(prefix="bench-reports-") as tmp:
        data_dir = Path(tmp)
        fill_seconds, campaign = fill(data_dir, rows)
        write_registry(data_dir)
        first = run_command(data_dir, data_dir / "out", campaign, threshold)
        s.log(f"reports: all eligible in {first['seconds']} s, peak {first['peak_rss_mb']} MB")
        resumed = run_command(data_dir, data_dir / "out", campaign, threshold)
        per = [json.loads(p.read_text()) for p in (data_dir / "out").glob("*/done.json")]
    report = {
        "rows": rows, "threshold": threshold or 50_000, "fill_seconds": round(fill_seconds, 1),
        "first": first, "resumed": resumed,
        "build_seconds": sorted(p.get("build_seconds", 0) for p in per),
        "render_seconds": sorted(p.get("render_seconds", 0) for p in per),
        "pages": sum(p.get("pages", 0) for p in per),
    }
    text = json.dumps(report, indent=2, ensure_ascii=False)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
