#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Stops the Kafka broker started by start.sh on $SURVEY_KAFKA_PORT (SIGTERM, SIGKILL after
# $SURVEY_INFRA_TIMEOUT s). Idempotent. `stop.sh --wipe` also deletes its data, config and log.
set -euo pipefail
LOG_TAG=kafka
# shellcheck source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
lock_or_wait "$KAFKA_HOME.lock"

stop_pidfile "Kafka on :$KAFKA_PORT" "$KAFKA_PIDFILE" "$KAFKA_CONFIG"
if [ "${1:-}" = "--wipe" ]; then
    log "deleting $KAFKA_HOME"
    rm -rf "$KAFKA_HOME"
fi
