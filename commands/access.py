"""`survey-ingest access grant|list|revoke`: access tokens from the command line.

Through the admin API (api/access_admin.py), so the answers are the HTTP endpoints' own: with
`--url URL [--token T]` of a running instance (embedded `serve` or the distributed `api`),
else in process over the embedded data dir (`--data-dir`, instance stopped). The token is
printed once, at `grant`; it is stored nowhere but as its hash.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

from commands.review import IntegrityError, _request
from schemas.access import Role
from schemas.settings import Settings


def _target_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="base URL of a running instance (its admin endpoints)")
    p.add_argument("--token", help="admin token (default: env SURVEY_ADMIN_TOKEN)")
    p.add_argument("--data-dir", dest="data_dir", type=Path,
                   help="without --url: the embedded data dir (instance stopped)")


def _aware(value: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r}: give an offset, e.g. +08:00")
    return moment


def add_commands(sub: Any) -> None:
    access = sub.add_parser("access", help="access tokens: grant, list, revoke").add_subparsers(
        dest="access_command", required=True)
    p = access.add_parser("grant", help="issue a token (printed once)")
    p.add_argument("--role", required=True, choices=[r.value for r in Role])
    p.add_argument("--campaign", required=True, help="the campaign ('*': all; admin, monitor)")
    p.add_argument("--unit", help="the unit of a unit token")
    p.add_argument("--work-region", dest="work_region", help="the region of a coordinator token")
    p.add_argument("--label", required=True, help="whom it is given to (person or office)")
    p.add_argument("--expires-at", dest="expires_at", type=_aware,
                   help="ISO time with offset after which it is refused")
    _target_flags(p)
    p = access.add_parser("list", help="tokens (never their secrets)")
    p.add_argument("--campaign")
    _target_flags(p)
    p = access.add_parser("revoke", help="revoke a token: refused everywhere within seconds")
    p.add_argument("token_id")
    _target_flags(p)


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        if args.access_command == "grant":
            body: dict[str, Any] = {"role": args.role, "campaign": args.campaign,
                                    "label": args.label}
            if args.unit:
                body["unit"] = args.unit
            if args.work_region:
                body["work_region"] = args.work_region
            if args.expires_at:
                body["expires_at"] = args.expires_at.isoformat()
            result = _request(args, settings, "POST", "/v1/admin/tokens", body)
        elif args.access_command == "list":
            params = {"campaign": args.campaign} if args.campaign else None
            result = _request(args, settings, "GET", "/v1/admin/tokens", params=params)
        else:
            result = _request(args, settings, "DELETE", f"/v1/admin/tokens/{args.token_id}")
    except IntegrityError as exc:
        raise AccessError(str(exc)) from exc
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


class AccessError(Exception):
    """A refusal to show the user (exit status 2)."""
