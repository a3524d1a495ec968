#!/usr/bin/env bash
# `make stack-down`: stops what infra/stack/up.sh started (API, collector, worker, then ClickHouse
# and Kafka). Idempotent. `down.sh --wipe` also deletes the servers' data and the stack's logs.
set -euo pipefail
LOG_TAG=stack
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

RUN_DIR="${SURVEY_STACK_DIR:-$SURVEY_INFRA_DATA/stack}"
mkdir -p "$RUN_DIR"
lock_or_wait "$RUN_DIR/.lock"
# Writers of Kafka first, so nothing is left half-sent; the worker commits only what it stored.
for name in api collector worker findings; do
    stop_pidfile "$name" "$RUN_DIR/$name.pid" "commands.cli $name"
done
bash "$INFRA_DIR/clickhouse/stop.sh" "$@"
bash "$INFRA_DIR/kafka/stop.sh" "$@"
if [ "${1:-}" = "--wipe" ]; then
    log "deleting $RUN_DIR"
    rm -rf "$RUN_DIR"
fi
