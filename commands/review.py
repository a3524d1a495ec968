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
import json
import secrets
from pathlib import Path
from typing import Any

import httpx

from schemas.settings import Settings


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
    p = campaign_sub.add_parser(
        "median", help="publish the median completion time the relative speed floor uses")
    p.add_argument("campaign")
    _target_flags(p)


def _request(
    args: argparse.Namespace, settings: Settings, method: str, path: str,
    body: dict[str, Any] | None = None, params: dict[str, str] | None = None,
) -> Any:
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
    from runtime.embedded import EmbeddedRuntime

    token = secrets.token_hex(16)
    runtime = EmbeddedRuntime(settings.model_copy(update={"admin_token": token}))
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
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(json.dumps({"campaign": args.campaign, "file": str(args.out),
                          "sha256": snapshot["sha256"]}))
    else:
        print(text, end="")
    return 0


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
