"""`survey-ingest campaign check|load`: validate a campaign file, or put it in force."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from commands.common import CliError, settings_from
from schemas.campaign import load_campaign_file
from schemas.settings import Settings


def add_commands(camp: Any) -> None:
    p = camp.add_parser("check", help="validate a campaign file and print a summary")
    p.add_argument("file", type=Path)
    p = camp.add_parser("load", help="load or update a campaign definition")
    p.add_argument("file", type=Path)
    p.add_argument("--url", help="base URL of a running instance (uses its admin endpoint)")
    p.add_argument("--token", help="admin token (default: env SURVEY_ADMIN_TOKEN)")
    p.add_argument("--data-dir", dest="data_dir", type=Path,
                   help="without --url: the embedded data dir to write to (instance stopped)")


def run(args: argparse.Namespace) -> int:
    definition = load_campaign_file(args.file)
    if args.campaign_command == "check":
        print(json.dumps({
            "file": str(args.file), "campaign": definition.campaign,
            "phases": [p.name for p in definition.phases],
            "work_regions": len(definition.work_regions), "provinces": len(definition.provinces),
            "units": len(definition.units), "links": len(definition.links),
            "questionnaire_version": definition.questionnaire.version,
        }, ensure_ascii=False))
        return 0
    if args.url:
        import httpx  # only this branch: `serve` starts without it

        token = args.token or Settings().admin_token
        try:
            response = httpx.put(
                f"{args.url.rstrip('/')}/v1/admin/campaigns/{definition.campaign}",
                content=args.file.read_bytes(),
                headers={"authorization": f"Bearer {token}",
                         "content-type": "application/yaml"},
                timeout=30,
            )
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach {args.url}: {exc}") from exc
        if response.status_code != 200:
            raise CliError(
                f"{args.url} refused {args.file}: {response.status_code} {response.text}"
            )
        print(response.text)
        return 0
    from runtime.serve import load_offline

    settings = settings_from(args)
    asyncio.run(load_offline(settings, definition))
    print(json.dumps({"campaign": definition.campaign, "status": "in force",
                      "data_dir": str(settings.data_dir)}))
    return 0
