#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Stops the nginx that start.sh runs on $SURVEY_NGINX_PORT (SIGTERM: fast shutdown; SIGKILL after
# $SURVEY_INFRA_TIMEOUT s). Idempotent. `stop.sh --wipe` also deletes its config, logs and temp files.
set -euo pipefail
LOG_TAG=nginx
# shellcheck source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
lock_or_wait "$NGINX_HOME.lock"

stop_pidfile "nginx on :$NGINX_PORT" "$NGINX_PIDFILE" "$NGINX_CONFIG"
if [ "${1:-}" = "--wipe" ]; then
    log "deleting $NGINX_HOME and $NGINX_CACHE_DIR"
    rm -rf "$NGINX_HOME" "$NGINX_CACHE_DIR"
fi
