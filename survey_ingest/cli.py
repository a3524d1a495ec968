"""survey-ingest: one entry point, a subcommand per role."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from schemas.campaign import CampaignFileError, load_campaign_file
from schemas.settings import Settings

EXAMPLE_CAMPAIGN = Path(__file__).parent / "examples" / "campaign.yaml"


class CliError(Exception):
    """A message for the user; printed without a traceback, exit status 2."""


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("host", "port", "data_dir", "kafka_bootstrap", "clickhouse_url", "admin_token"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


def _add_server_flags(p: argparse.ArgumentParser, port: int | None = None) -> None:
    p.add_argument("--host", help="address to listen on (default 127.0.0.1, env SURVEY_HOST)")
    p.add_argument("--port", type=int, default=port, help="port (env SURVEY_PORT)")


def _add_embedded_flags(p: argparse.ArgumentParser) -> None:
    _add_server_flags(p)
    p.add_argument("--data-dir", dest="data_dir", type=Path,
                   help="where the embedded log and store live "
                   "(default ./data, env SURVEY_DATA_DIR)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="survey-ingest", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="everything in one process on the embedded default")
    _add_embedded_flags(p)

    p = sub.add_parser("demo", help="serve plus generated answer sheets and the live leaderboard")
    _add_embedded_flags(p)
    p.add_argument("--rate", type=float, default=50.0, help="answer sheets per second")
    p.add_argument("--duration", type=float, default=None,
                   help="seconds to run (default: until Ctrl-C)")

    camp = sub.add_parser("campaign", help="campaign definitions").add_subparsers(
        dest="campaign_command", required=True)
    p = camp.add_parser("check", help="validate a campaign file and print a summary")
    p.add_argument("file", type=Path)
    p = camp.add_parser("load", help="load or update a campaign definition")
    p.add_argument("file", type=Path)
    p.add_argument("--url", help="base URL of a running instance (uses its admin endpoint)")
    p.add_argument("--token", help="admin token (default: env SURVEY_ADMIN_TOKEN)")
    p.add_argument("--data-dir", dest="data_dir", type=Path,
                   help="without --url: the embedded data dir to write to (instance stopped)")
    from survey_ingest import integrity

    integrity.add_commands(sub, camp)  # review ..., campaign freeze, campaign median

    from survey_ingest import distributed_cli, qr

    qr.add_commands(sub)
    distributed_cli.add_commands(sub)
    from reports import command as report_command

    report_command.add_command(sub)
    from survey_ingest import erase

    erase.add_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpcore", "kafka", "aiokafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(_dispatch(args) or 0)
    except CliError as exc:
        print(f"survey-ingest: {exc}", file=sys.stderr)
        return 2
    except CampaignFileError as exc:
        print(f"survey-ingest: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int | None:
    if args.command in ("serve", "demo"):
        from survey_ingest import serve

        settings = _settings(args)
        if args.command == "serve":
            asyncio.run(serve.serve(settings))
        else:
            asyncio.run(serve.demo(settings, EXAMPLE_CAMPAIGN, args.rate, args.duration))
        return 0
    if args.command == "review" or (
        args.command == "campaign" and args.campaign_command in ("freeze", "median")
    ):
        return _integrity(args)
    if args.command == "campaign":
        return _campaign(args)
    if args.command == "report":
        from reports import command as report_command

        return report_command.run(args, _settings(args))
    if args.command == "erase":
        from survey_ingest import erase

        return erase.run(args, _settings(args))
    if args.command == "links":
        from survey_ingest import qr

        return qr.dispatch(args)
    from survey_ingest import distributed_cli

    return distributed_cli.dispatch(args, _settings(args))


def _integrity(args: argparse.Namespace) -> int:
    from survey_ingest import integrity

    try:
        if args.command == "review":
            return integrity.run_review(args, _settings(args))
        if args.campaign_command == "freeze":
            return integrity.run_freeze(args, _settings(args))
        return integrity.run_median(args, _settings(args))
    except integrity.IntegrityError as exc:
        raise CliError(str(exc)) from exc


def _campaign(args: argparse.Namespace) -> int:
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
        import httpx

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
    from survey_ingest import serve

    settings = _settings(args)
    asyncio.run(serve.load_offline(settings, definition))
    print(json.dumps({"campaign": definition.campaign, "status": "in force",
                      "data_dir": str(settings.data_dir)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
