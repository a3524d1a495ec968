"""`survey-ingest links qr`: QR codes and print sheets for units' links, from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from links.qr import QrError, from_file, from_registry, from_url, write_qr_codes
from runtime.registry import RegistryUnavailable, from_data_dir
from schemas.campaign import CampaignFileError
from schemas.settings import Settings


def add_commands(sub: Any) -> None:
    links = sub.add_parser("links", help="unit links").add_subparsers(
        dest="links_command", required=True)
    p = links.add_parser(
        "qr", help="QR codes (PNG, SVG) per link and a printable sheet per unit",
        description="Writes DIR/<unit>/<code>.png and .svg encoding <base-url>/s/<code>, "
                    "and DIR/<unit>/sheet.html for printing. Revoked links are left out.",
    )
    p.add_argument("--campaign", required=True, help="campaign id")
    p.add_argument("--unit", action="append", help="only this unit (repeatable; default: all)")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--base-url", dest="base_url",
                   help="public address of the answering pages (default SURVEY_PUBLIC_BASE_URL)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--file", type=Path, help="read the campaign from this campaign file")
    src.add_argument("--url", help="read the campaign from a running instance at this address")
    src.add_argument("--data-dir", dest="data_dir", type=Path,
                     help="read the campaign from a stopped embedded instance (default ./data)")


def dispatch(args: argparse.Namespace) -> int:
    # Errors are reported here rather than by the CLI's handler, which may live in __main__.
    try:
        settings = Settings()
        campaign: str = args.campaign
        if args.file is not None:
            source = from_file(args.file, campaign)
        elif args.url:
            source = from_url(args.url, campaign)
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
