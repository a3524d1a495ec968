"""Distributed roles: collector, worker, api, migrate, replay, reconcile (Kafka + ClickHouse)."""

from __future__ import annotations

import argparse
from typing import Any

from commands.common import run_async
from commands.progress import progress_bar
from schemas.settings import Settings

COLLECTOR_PORT = 8080
API_PORT = 8081


def _connection_flags(p: argparse.ArgumentParser, *, clickhouse: bool = True) -> None:
    p.add_argument("--kafka-bootstrap", dest="kafka_bootstrap",
                   help="Kafka bootstrap servers, host:port[,...] (env SURVEY_KAFKA_BOOTSTRAP)")
    p.add_argument("--topic-prefix", dest="topic_prefix",
                   help="prefix of every topic and consumer group (env SURVEY_TOPIC_PREFIX)")
    if clickhouse:
        p.add_argument("--clickhouse-url", dest="clickhouse_url",
                       help="clickhouse://host:port/database (env SURVEY_CLICKHOUSE_URL)")


def _http_flags(p: argparse.ArgumentParser, port: int) -> None:
    p.add_argument("--host", help="address to listen on (default 127.0.0.1, env SURVEY_HOST)")
    p.add_argument("--port", type=int, default=port, help=f"port (default {port})")


def add_commands(sub: Any) -> None:
    p = sub.add_parser("collector", help="HTTP collector appending to Kafka")
    _http_flags(p, COLLECTOR_PORT)
    _connection_flags(p, clickhouse=False)
    p.add_argument("--workers", type=int,
                   help="processes sharing the port, one per core (default 1, "
                        "env SURVEY_COLLECTOR_WORKERS)")

    p = sub.add_parser("worker", help="faust worker: judge, then sink verdicts to ClickHouse")
    _connection_flags(p)
    p.add_argument("--instance-id", dest="instance_id",
                   help="stable id of this worker (static group membership: a restart takes "
                        "its partitions back without a rebalance)")
    p.add_argument("--metrics-port", dest="metrics_port", type=int, default=8082,
                   help="port for /metrics (default 8082; 0: none)")

    p = sub.add_parser("findings", help="anomaly findings from the judged topic into ClickHouse "
                                        "(run one per deployment)")
    _connection_flags(p)
    p.add_argument("--metrics-port", dest="metrics_port", type=int, default=8083,
                   help="port for /metrics (default 8083; 0: none)")

    p = sub.add_parser("api", help="read-side API over ClickHouse")
    _http_flags(p, API_PORT)
    _connection_flags(p)

    p = sub.add_parser("migrate", help="create Kafka topics and apply ClickHouse migrations")
    _connection_flags(p)

    p = sub.add_parser("replay", help="re-judge the raw log into a fresh ClickHouse database")
    _connection_flags(p)
    p.add_argument("--into-database", dest="into_database",
                   help="database for the fresh projections (default: <live>_replay_<time>)")

    p = sub.add_parser(
        "reconcile",
        help="check every count table against the verdicts and review decisions (exit 1 on any"
             " difference); --data-dir for a stopped embedded instance",
    )
    _connection_flags(p)
    p.add_argument("--data-dir", dest="reconcile_data_dir",
                   help="check the embedded instance in this data dir (stopped) instead")
    p.add_argument("--repair", action="store_true",
                   help="rebuild the count tables and review rows, then check again"
                        " (no writer may run meanwhile)")


def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if getattr(args, "topic_prefix", None):
        settings = settings.model_copy(update={"topic_prefix": args.topic_prefix})
    command = args.command
    if command == "collector":
        from runtime.distributed.collector import (
            CollectorSettings,
            run_collector,
            run_collector_workers,
        )

        workers = (args.workers if args.workers is not None
                   else CollectorSettings().collector_workers)
        if workers < 1:
            raise SystemExit("survey-ingest collector: --workers must be at least 1")
        if workers > 1:
            return run_collector_workers(settings, workers)
        run_async(run_collector(settings))
        return 0
    if command == "api":
        from runtime.distributed.api import run_api

        run_async(run_api(settings))
        return 0
    if command == "worker":
        from runtime.distributed.worker import run_worker

        run_worker(settings, instance_id=args.instance_id, metrics_port=args.metrics_port)
        return 0
    if command == "findings":
        from runtime.distributed.findings import serve_findings

        serve_findings(settings, metrics_port=args.metrics_port)
        return 0
    if command == "migrate":
        from runtime.distributed.migrate import migrate

        return migrate(settings)
    if command == "replay":
        from runtime.distributed.replay import replay

        with progress_bar(settings) as progress:
            return replay(settings, args.into_database, progress)
    if command == "reconcile":
        with progress_bar(settings) as progress:
            if args.reconcile_data_dir:
                from runtime.reconcile import reconcile_data_dir

                return reconcile_data_dir(args.reconcile_data_dir, repair=args.repair,
                                          progress=progress)
            from runtime.distributed.reconcile import reconcile

            return reconcile(settings, repair=args.repair, progress=progress)
    raise SystemExit(f"survey-ingest {command}: unknown command")
