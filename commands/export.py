"""`survey-ingest export`: a campaign's answer sheets as csv, xlsx, sav or parquet (CONTRACT §9),
from the chDB store of a stopped embedded instance (`--data-dir`), a ClickHouse server
(`--clickhouse-url`, with the registry from Kafka or `--campaign-file`), or a running instance
over HTTP (`--url --token`). A long export shows its progress on a terminal (rows, rows/s, ETA;
commands/progress.py).

The file appears under its name only once complete: it is written as `<out>.part` and renamed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

from commands.common import CliError, local_operator
from commands.progress import progress_bar
from core.ports import RegionFilter
from exports.formats import FORMATS, STATUSES
from schemas.settings import Settings

FILTERS = ("province", "work_region", "unit", "link", "channel", "respondent_province", "city",
           "phase")


def add_command(sub: Any) -> None:
    p = sub.add_parser(
        "export", help="answer sheets as csv, xlsx, sav or parquet, with a codebook",
        description="One row per answer sheet under its standing status (after review), in the "
        "contract's columns. Reads the chDB store of --data-dir (the embedded instance must be "
        "stopped), a ClickHouse server (--clickhouse-url), or a running instance (--url).",
    )
    p.add_argument("--campaign", required=True, help="campaign id")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--out", required=True, type=Path, help="file to write")
    p.add_argument("--status", choices=STATUSES, default="accepted",
                   help="accepted sheets only (default) or all, with their status")
    for name in FILTERS:
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, help=f"only this {name}")
    p.add_argument("--date-from", dest="date_from", type=dt.date.fromisoformat,
                   help="receive date (campaign time zone), inclusive, YYYY-MM-DD")
    p.add_argument("--date-to", dest="date_to", type=dt.date.fromisoformat)
    p.add_argument("--as-of", dest="as_of", type=dt.datetime.fromisoformat,
                   help="what the store held at this earlier time (ISO with offset)")
    p.add_argument("--codebook", type=Path, help="also write the codebook (JSON) here")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--data-dir", dest="data_dir", type=Path,
                       help="embedded data dir (default ./data, env SURVEY_DATA_DIR)")
    where.add_argument("--clickhouse-url", dest="clickhouse_url",
                       help="clickhouse://host:port/database: read a ClickHouse server")
    where.add_argument("--url", help="base URL of a running instance (its export endpoint)")
    p.add_argument("--token", help="with --url: bearer token (default env SURVEY_ADMIN_TOKEN)")
    p.add_argument("--kafka-bootstrap", dest="kafka_bootstrap",
                   help="with --clickhouse-url: where the registry topic is")
    p.add_argument("--campaign-file", dest="campaign_file", type=Path,
                   help="take units and questions from this file, not the registry")
    p.add_argument("--quiet", action="store_true", help="no progress display")


def filters_of(args: argparse.Namespace) -> RegionFilter:
    return RegionFilter(**{n: getattr(args, n) for n in (*FILTERS, "date_from", "date_to")})


def run(args: argparse.Namespace, settings: Settings) -> int:
    started = time.monotonic()
    summary = write_export(args, settings)
    summary.pop("codebook")
    print(json.dumps({
        "campaign": args.campaign, "format": args.format, "status": args.status,
        "file": str(args.out), "codebook": str(args.codebook) if args.codebook else None,
        **summary, "seconds": round(time.monotonic() - started, 2),
    }, ensure_ascii=False))
    return 0


def write_export(args: argparse.Namespace, settings: Settings, via: str = "cli") -> dict[str, Any]:
    """The export the arguments describe, written to args.out (and args.codebook); returns
    {"rows", "as_of", "codebook"}. Also what `campaign freeze --export-dir` runs."""
    if args.as_of is not None and args.as_of.tzinfo is None:
        raise CliError("--as-of needs a time zone offset, e.g. 2026-09-23T00:00:00+08:00")
    part = args.out.with_name(args.out.name + ".part")
    try:
        remote = bool(args.url)
        summary = _remote(args, settings, part) if remote else _local(args, settings, part, via)
        part.replace(args.out)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    if args.codebook:
        args.codebook.write_text(
            json.dumps(summary["codebook"], ensure_ascii=False, indent=2) + "\n",
            encoding="utf-8",
        )
    return summary


def namespace(**given: Any) -> argparse.Namespace:
    """The arguments of `export` with its defaults, for callers other than its parser."""
    optional = (*FILTERS, "date_from", "date_to", "as_of", "codebook", "data_dir",
                "clickhouse_url", "url", "token", "kafka_bootstrap", "campaign_file")
    args: dict[str, Any] = dict.fromkeys(optional)
    args.update(status="accepted", quiet=False)
    args.update(given)
    return argparse.Namespace(**args)


def _local(
    args: argparse.Namespace, settings: Settings, part: Path, via: str
) -> dict[str, Any]:
    from exports.run import Export, ExportError, ExportRequest
    from runtime.registry import RegistryUnavailable, from_campaign_file, from_data_dir, from_topic
    from storage import open_store

    request = ExportRequest(
        campaign=args.campaign, format=args.format, status=args.status, filters=filters_of(args),
        as_of=args.as_of, who=local_operator(), via=via,
    )
    try:
        if args.campaign_file is not None:
            registry = from_campaign_file(args.campaign_file)
        elif args.clickhouse_url:
            if args.kafka_bootstrap:
                settings = settings.model_copy(update={"kafka_bootstrap": args.kafka_bootstrap})
            registry = from_topic(settings)
        else:
            registry = from_data_dir(settings.data_dir)
    except RegistryUnavailable as exc:
        raise CliError(str(exc)) from exc
    url = args.clickhouse_url or f"chdb://{Path(settings.data_dir).resolve() / 'chdb'}"
    try:
        store = open_store(url)
    except Exception as exc:  # an unreachable server or a busy chDB directory
        raise CliError(f"cannot open the store {url}: {exc}") from exc
    with store:
        try:
            export = Export(store, registry.get(args.campaign), request)
            with progress_bar(settings, quiet=args.quiet) as progress:
                progress.stage("export", export.total, "rows")
                codebook = export.write(part, progress.advance)
        except ExportError as exc:
            raise CliError(str(exc)) from exc
    return {"rows": export.rows, "as_of": export.as_of.isoformat(), "codebook": codebook}


def _remote(args: argparse.Namespace, settings: Settings, part: Path) -> dict[str, Any]:
    import httpx

    params = dict(filters_of(args).given())
    params.update(format=args.format, status=args.status)
    if args.as_of is not None:
        params["as_of"] = args.as_of.isoformat()
    headers = {"authorization": f"Bearer {args.token or settings.admin_token}"}
    base = f"{args.url.rstrip('/')}/v1/campaigns/{args.campaign}/export"
    timeout = httpx.Timeout(60.0, read=None)  # xlsx and sav answer only once written
    try:
        with httpx.stream("GET", base, params=params, headers=headers, timeout=timeout) as r:
            if r.status_code >= 400:
                r.read()
                raise CliError(f"{r.status_code}: {_detail(r)}")
            rows = int(r.headers.get("x-export-rows", "0"))
            as_of = r.headers.get("x-export-as-of", "")
            length = r.headers.get("content-length")
            with part.open("wb") as f, progress_bar(settings, quiet=args.quiet) as progress:
                progress.stage("download", int(length) if length else None, "bytes")
                for chunk in r.iter_bytes(1 << 20):
                    f.write(chunk)
                    progress.advance(len(chunk))
        params["as_of"] = as_of
        cb = httpx.get(f"{base}/codebook", params=params, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach {args.url}: {exc}") from exc
    if cb.status_code >= 400:
        raise CliError(f"codebook: {cb.status_code}: {_detail(cb)}")
    got = _rows_in(part, args.format)
    if got is not None and got != rows:
        raise CliError(f"the transfer ended early: {got:,} of {rows:,} rows; export again")
    return {"rows": rows, "as_of": as_of, "codebook": cb.json()}


def _detail(response: Any) -> str:
    try:
        return str(response.json().get("detail"))
    except ValueError:
        return str(response.text)


def _rows_in(path: Path, fmt: str) -> int | None:
    """Rows in a downloaded csv or parquet file (a body cut short by a failure on the server
    side has fewer, or is no parquet file at all); None for the other formats."""
    import pyarrow as pa

    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        if fmt == "csv":
            import pyarrow.csv as pa_csv

            with path.open("rb") as f:
                f.read(3)  # the BOM
                reader = pa_csv.open_csv(
                    f, parse_options=pa_csv.ParseOptions(newlines_in_values=True),
                    convert_options=pa_csv.ConvertOptions(
                        include_columns=["submission_id"],
                        column_types={"submission_id": pa.string()},
                    ),
                )
                return int(sum(b.num_rows for b in reader))
    except (pa.ArrowInvalid, OSError):
        return -1
    return None
