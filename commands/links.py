"""`survey-ingest links issue|list|revoke|qr`: units' own links and their QR codes and print
sheets, from the command line. issue/list/revoke go through the links API (api/links.py): with
--url of a running instance, else in process over the embedded data dir (instance stopped)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from commands.review import IntegrityError, _print, _request, _target_flags
from links.qr import QrError, from_file, from_registry, from_url, write_qr_codes
from runtime.registry import RegistryUnavailable, from_data_dir
from schemas.campaign import CampaignFileError
from schemas.settings import Settings


def add_commands(sub: Any) -> None:
    links = sub.add_parser("links", help="unit links").add_subparsers(
        dest="links_command", required=True)
    p = links.add_parser("issue", help="issue new links for a unit (within its planned_links)")
    p.add_argument("campaign")
    p.add_argument("unit")
    p.add_argument("--count", type=int, default=1, help="how many (default 1)")
    p.add_argument("--channel", default="", help="where they will be spread, e.g. wechat")
    _target_flags(p)
    p = links.add_parser("list", help="a unit's links with opens, valid and rejected sheets")
    p.add_argument("campaign")
    p.add_argument("unit")
    _target_flags(p)
    p = links.add_parser("revoke", help="revoke a link: later sheets are rejected revoked_link")
    p.add_argument("campaign")
    p.add_argument("code")
    _target_flags(p)
    p = links.add_parser(
        "qr", help="QR codes (PNG, SVG) per link and a printable sheet per unit",
        description="Writes DIR/<unit>/<code>.png and .svg encoding <base-url>/s/<code>, "
                    "and DIR/<unit>/sheet.html and sheet.pdf (A4, crop marks) for printing. "
                    "Revoked links are left out.",
    )
    p.add_argument("--campaign", required=True, help="campaign id")
    p.add_argument("--unit", action="append", help="only this unit (repeatable; default: all)")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--base-url", dest="base_url",
                   help="public address of the answering pages (default SURVEY_PUBLIC_BASE_URL)")
    p.add_argument("--token", help="with --url: a token that may list links "
                   "(default: env SURVEY_ADMIN_TOKEN)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--file", type=Path, help="read the campaign from this campaign file")
    src.add_argument("--url", help="read the campaign from a running instance at this address "
                     "(with a token, units' issued links and revocations too)")
    src.add_argument("--data-dir", dest="data_dir", type=Path,
                     help="read the campaign from a stopped embedded instance (default ./data)")


def dispatch(args: argparse.Namespace) -> int:
    # Errors are reported here rather than by the CLI's handler, which may live in __main__.
    if args.links_command in ("issue", "list", "revoke"):
        return _links_api(args)
    try:
        settings = Settings()
        campaign: str = args.campaign
        if args.file is not None:
            source = from_file(args.file, campaign)
        elif args.url:
            source = from_url(args.url, campaign, args.token or settings.admin_token)
        else:
            data_dir = args.data_dir or settings.data_dir
            source = from_registry(from_data_dir(data_dir), campaign, str(data_dir))
        base_url = args.base_url or settings.public_base_url
        summary = write_qr_codes(source, args.out, base_url, args.unit)
    except (QrError, RegistryUnavailable, CampaignFileError, OSError) as exc:
        print(f"survey-ingest: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary.to_json(), ensure_ascii=False))
    return 0


def _links_api(args: argparse.Namespace) -> int:
    from commands.common import settings_from

    settings = settings_from(args)
    c = args.campaign
    try:
        if args.links_command == "issue":
            _print(_request(args, settings, "POST", f"/v1/campaigns/{c}/units/{args.unit}/links",
                            {"count": args.count, "channel": args.channel}))
        elif args.links_command == "list":
            _print(_request(args, settings, "GET", f"/v1/campaigns/{c}/units/{args.unit}/links"))
        else:
            _print(_request(args, settings, "DELETE", f"/v1/campaigns/{c}/links/{args.code}"))
    except IntegrityError as exc:
        print(f"survey-ingest: {exc}", file=sys.stderr)
        return 2
    return 0
