#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Stops the ZooKeeper that keeper-start.sh runs on $SURVEY_ZOOKEEPER_PORT (SIGTERM, SIGKILL after
# $SURVEY_INFRA_TIMEOUT s). Idempotent. `keeper-stop.sh --wipe` also deletes its data and log.
set -euo pipefail
# shellcheck disable=SC2034 # read by lib.sh's log()
LOG_TAG=zookeeper
# shellcheck source=keeper-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/keeper-env.sh"
lock_or_wait "$ZK_HOME.lock"

stop_pidfile "ZooKeeper on :$ZK_PORT" "$ZK_PIDFILE" "$ZK_CONFIG"
if [ "${1:-}" = "--wipe" ]; then
    log "deleting $ZK_HOME"
    rm -rf "$ZK_HOME"
fi
