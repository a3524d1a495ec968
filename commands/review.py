"""`survey-ingest review ...` and `survey-ingest campaign freeze|median`: the integrity of the
ranking from the command line.

Every command goes through the admin API (api/review.py), so it behaves and answers exactly as
the HTTP endpoints do: with `--url`, of a running instance (embedded `serve` or the distributed
`api`); without, in process over the embedded data dir (`--data-dir`, instance stopped).
`campaign freeze --clickhouse` reads the registry topic and a ClickHouse database directly
(e.g. one written by `survey-ingest replay --into-database`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schemas.settings import Settings

if TYPE_CHECKING:
    import httpx


class IntegrityError(Exception):
    """A refusal to show the user (exit status 2)."""


def _target_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="base URL of a running instance (its admin endpoints)")
    p.add_argument("--token", help="admin token (default: env SURVEY_ADMIN_TOKEN)")
    p.add_argument("--data-dir", dest="data_dir", type=Path,
                   help="without --url: the embedded data dir (instance stopped)")


def add_commands(sub: Any, campaign_sub: Any) -> None:
    review = sub.add_parser(
        "review", help="mark answer sheets invalid or valid again; the audit trail"
    ).add_subparsers(dest="review_command", required=True)
    p = review.add_parser("mark", help="record a review decision (counts follow it)")
    p.add_argument("campaign")
    action = p.add_mutually_exclusive_group(required=True)
    action.add_argument("--invalid", dest="action", action="store_const", const="invalid")
    action.add_argument("--valid", dest="action", action="store_const", const="valid",
                        help="valid again (an appeal upheld)")
    p.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    p.add_argument("--reviewer", required=True, help="who decides (kept in the audit trail)")
    p.add_argument("--submission-id", dest="submission_ids", action="append", default=[],
                   help="a sheet (repeat for several)")
    p.add_argument("--link", dest="link_code", help="a link's sheets received in [--from, --to)")
    p.add_argument("--from", dest="window_start", type=dt.datetime.fromisoformat,
                   help="ISO time with offset, e.g. 2026-11-25T08:00:00+08:00")
    p.add_argument("--to", dest="window_end", type=dt.datetime.fromisoformat)
    p.add_argument("--decision-id", dest="decision_id",
                   help="idempotency key: the same decision sent again changes nothing")
    _target_flags(p)
    p = review.add_parser("list", help="the audit trail: decisions, who, what, when, why")
    p.add_argument("campaign")
    p.add_argument("--submission-id", dest="submission_id", help="only this sheet's decisions")
    _target_flags(p)

    p = campaign_sub.add_parser("freeze", help="write the final ranking with its sha256")
    p.add_argument("campaign")
    p.add_argument("--out", type=Path, help="file to write (default: stdout)")
    _target_flags(p)
    p.add_argument("--clickhouse", action="store_true",
                   help="read the registry topic and SURVEY_CLICKHOUSE_URL (or --clickhouse-url)")
    p.add_argument("--clickhouse-url", dest="clickhouse_url")
    p.add_argument("--kafka-bootstrap", dest="kafka_bootstrap")
    p.add_argument("--export-dir", dest="export_dir", type=Path,
                   help="also write the final export (every sheet, standing status) with its "
                   "codebook, the ranking and a manifest of sha256s into this directory")
    p.add_argument("--export-format", dest="export_formats", action="append",
                   choices=("csv", "xlsx", "sav", "parquet"),
                   help="with --export-dir: a format to write (repeat; default csv and parquet)")
    p = campaign_sub.add_parser(
        "median", help="publish the median completion time the relative speed floor uses")
    p.add_argument("campaign")
    _target_flags(p)


def _request(
    args: argparse.Namespace, settings: Settings, method: str, path: str,
    body: dict[str, Any] | None = None, params: dict[str, str] | None = None,
) -> Any:
    import httpx  # here, not at the top: the CLI's entry point imports this module for
    # every command, `serve` included, which has no use for it

    if args.url:
        token = args.token or settings.admin_token
        try:
            response = httpx.request(
                method, f"{args.url.rstrip('/')}{path}", json=body, params=params,
                headers={"authorization": f"Bearer {token}"}, timeout=120,
            )
        except httpx.HTTPError as exc:
            raise IntegrityError(f"cannot reach {args.url}: {exc}") from exc
    else:
        response = asyncio.run(_in_process(settings, method, path, body, params))
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text
        raise IntegrityError(f"{response.status_code}: {detail}")
    return response.json()


async def _in_process(
    settings: Settings, method: str, path: str, body: dict[str, Any] | None,
    params: dict[str, str] | None,
) -> httpx.Response:
    import httpx

    from commands.common import local_operator
    from runtime.embedded import EmbeddedRuntime

    token = secrets.token_hex(16)
    # A one-off admin token, named on the audit trail as whoever runs the command.
    runtime = EmbeddedRuntime(settings.model_copy(update={"admin_token": token}),
                              admin_label=local_operator())
    try:
        transport = httpx.ASGITransport(app=runtime.api)
        async with httpx.AsyncClient(transport=transport, base_url="http://embedded") as client:
            return await client.request(
                method, path, json=body, params=params,
                headers={"authorization": f"Bearer {token}"},
            )
    finally:
        await runtime.stop()


def _print(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


def run_review(args: argparse.Namespace, settings: Settings) -> int:
    path = f"/v1/admin/campaigns/{args.campaign}/reviews"
    if args.review_command == "list":
        params = {"submission_id": args.submission_id} if args.submission_id else None
        _print(_request(args, settings, "GET", path, params=params))
        return 0
    body: dict[str, Any] = {
        "action": args.action, "reason": args.reason, "reviewer": args.reviewer,
        "submission_ids": args.submission_ids,
    }
    if args.link_code or args.window_start or args.window_end:
        body.update(
            link_code=args.link_code or "",
            window_start=args.window_start.isoformat() if args.window_start else None,
            window_end=args.window_end.isoformat() if args.window_end else None,
        )
    if args.decision_id:
        body["decision_id"] = args.decision_id
    _print(_request(args, settings, "POST", path, body))
    return 0


def run_freeze(args: argparse.Namespace, settings: Settings) -> int:
    if args.clickhouse:
        snapshot = _freeze_clickhouse(args, settings)
    else:
        snapshot = _request(args, settings, "POST", f"/v1/admin/campaigns/{args.campaign}/freeze")
    text = json.dumps(snapshot, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    if args.export_dir:
        manifest = _freeze_exports(args, settings, snapshot, text)
        print(json.dumps(manifest, ensure_ascii=False))
        if args.out:
            args.out.write_text(text, encoding="utf-8")
        return 0
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(json.dumps({"campaign": args.campaign, "file": str(args.out),
                          "sha256": snapshot["sha256"]}))
    else:
        print(text, end="")
    return 0


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _freeze_exports(
    args: argparse.Namespace, settings: Settings, snapshot: dict[str, Any], ranking: str
) -> dict[str, Any]:
    """The final export beside the final ranking: ranking.json, export.<format> for each format
    (every sheet under its standing status, all at one as-of), codebook.json, and manifest.json
    with each file's sha256. Refused when the export's accepted sheets per unit differ from the
    ranking's valid (something still moved between the two)."""
    from commands.export import namespace, write_export

    out: Path = args.export_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "ranking.json").write_text(ranking, encoding="utf-8")
    formats = args.export_formats or ["csv", "parquet"]
    as_of = None
    codebook: dict[str, Any] = {}
    for fmt in dict.fromkeys(formats):
        export_args = namespace(
            campaign=args.campaign, format=fmt, out=out / f"export.{fmt}", status="all",
            as_of=as_of, codebook=out / "codebook.json", data_dir=args.data_dir,
            clickhouse_url=(args.clickhouse_url or settings.clickhouse_url)
            if args.clickhouse else None,
            url=args.url, token=args.token, kafka_bootstrap=args.kafka_bootstrap,
        )
        summary = write_export(export_args, settings, via="freeze")
        codebook = summary["codebook"]
        as_of = dt.datetime.fromisoformat(summary["as_of"])  # every format at the same cut
    valid = {r["id"]: r["valid"] for r in snapshot["content"]["leaderboards"]["unit"]}
    accepted = {u: s.get("accepted", 0) for u, s in codebook["rows_by_unit"].items()}
    differ = sorted(u for u in set(valid) | set(accepted) - {""}
                    if valid.get(u, 0) != accepted.get(u, 0))
    if differ:
        raise IntegrityError(
            f"the export's accepted sheets differ from the ranking's valid for {len(differ)}"
            f" unit(s) ({', '.join(differ[:5])}): sheets still arriving or decisions pending?"
            " Stop intake and freeze again"
        )
    names = ["ranking.json", *(f"export.{fmt}" for fmt in dict.fromkeys(formats)),
             "codebook.json"]
    manifest = {
        "campaign": args.campaign,
        "frozen_at": snapshot["frozen_at"],
        "ranking_sha256": snapshot["sha256"],
        "export_as_of": codebook["as_of"],
        "rows": codebook["rows"],
        "accepted_equals_ranking_valid": True,
        "files": [
            {"name": n, "bytes": (out / n).stat().st_size, "sha256": _sha256(out / n)}
            for n in names
        ],
    }
    (out / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return manifest


def _freeze_clickhouse(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    from core import freeze
    from runtime.registry import from_topic
    from storage import open_store

    if args.kafka_bootstrap:
        settings = settings.model_copy(update={"kafka_bootstrap": args.kafka_bootstrap})
    registry = from_topic(settings)
    state = registry.get(args.campaign)
    if state is None:
        raise IntegrityError(f"unknown campaign {args.campaign!r}")
    with open_store(args.clickhouse_url or settings.clickhouse_url) as store:
        counts = store.unit_counts(args.campaign)
        versions = store.rules_versions(args.campaign)
    return freeze.snapshot(freeze.final_content(state, counts, versions), dt.datetime.now(dt.UTC))


def run_median(args: argparse.Namespace, settings: Settings) -> int:
    _print(_request(args, settings, "POST", f"/v1/admin/campaigns/{args.campaign}/median"))
    return 0
