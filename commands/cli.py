"""survey-ingest: one entry point, a subcommand per role."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from commands import access, campaign, distributed, erase, export, links, plan, report, review
from commands.common import CliError, add_embedded_flags, run_async, settings_from
from schemas.campaign import CampaignFileError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="survey-ingest", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="everything in one process on the embedded default")
    add_embedded_flags(p)
    p = sub.add_parser("demo", help="serve plus generated answer sheets and the live leaderboard")
    add_embedded_flags(p)
    p.add_argument("--rate", type=float, default=50.0, help="answer sheets per second")
    p.add_argument("--duration", type=float, default=None,
                   help="seconds to run (default: until Ctrl-C)")

    camp = sub.add_parser("campaign", help="campaign definitions").add_subparsers(
        dest="campaign_command", required=True)
    campaign.add_commands(camp)
    review.add_commands(sub, camp)  # review ..., campaign freeze, campaign median
    plan.add_commands(camp, review._target_flags)  # campaign plan import
    links.add_commands(sub)
    access.add_commands(sub)
    distributed.add_commands(sub)
    report.add_command(sub)
    erase.add_command(sub)
    export.add_command(sub)
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
    except (CliError, CampaignFileError) as exc:
        print(f"survey-ingest: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int | None:
    if args.command == "serve":
        from runtime.serve import serve

        run_async(serve(settings_from(args)))
        return 0
    if args.command == "demo":
        from commands.demo import demo

        run_async(demo(settings_from(args), args.rate, args.duration))
        return 0
    if args.command == "review" or (
        args.command == "campaign" and args.campaign_command in ("freeze", "median")
    ):
        return _review(args)
    if args.command == "campaign" and args.campaign_command == "plan":
        settings = settings_from(args)
        try:
            return plan.run_plan(
                args, lambda m, p, b: review._request(args, settings, m, p, b))
        except review.IntegrityError as exc:
            raise CliError(str(exc)) from exc
    if args.command == "campaign":
        return campaign.run(args)
    if args.command == "report":
        return report.run(args, settings_from(args))
    if args.command == "export":
        return export.run(args, settings_from(args))
    if args.command == "erase":
        return erase.run(args, settings_from(args))
    if args.command == "links":
        return links.dispatch(args)
    if args.command == "access":
        try:
            return access.run(args, settings_from(args))
        except access.AccessError as exc:
            raise CliError(str(exc)) from exc
    return distributed.dispatch(args, settings_from(args))


def _review(args: argparse.Namespace) -> int:
    try:
        if args.command == "review":
            return review.run_review(args, settings_from(args))
        if args.campaign_command == "freeze":
            return review.run_freeze(args, settings_from(args))
        return review.run_median(args, settings_from(args))
    except review.IntegrityError as exc:
        raise CliError(str(exc)) from exc


if __name__ == "__main__":
    sys.exit(main())
