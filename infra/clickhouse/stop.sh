#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Stops the ClickHouse server that start.sh runs on $SURVEY_CLICKHOUSE_TCP_PORT (SIGTERM, SIGKILL
# after $SURVEY_INFRA_TIMEOUT s). Idempotent. `stop.sh --wipe` also deletes its data, config, logs.
set -euo pipefail
LOG_TAG=clickhouse
# shellcheck source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
lock_or_wait "$CH_HOME.lock"

stop_pidfile "ClickHouse on :$CH_TCP_PORT" "$CH_PIDFILE" "$CH_CONFIG"
if [ "${1:-}" = "--wipe" ]; then
    log "deleting $CH_HOME"
    rm -rf "$CH_HOME"
fi
