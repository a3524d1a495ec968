#!/usr/bin/env bash
# `make stack`: the distributed runtime on this machine, in the background.
#   Kafka (127.0.0.1:$SURVEY_KAFKA_PORT, default 9092), ClickHouse (127.0.0.1:$SURVEY_CLICKHOUSE_TCP_PORT,
#   default 9000), `survey-ingest migrate`, then a collector on 127.0.0.1:8080, a worker (metrics on
#   :8082), the findings role (:8083) and the API on 127.0.0.1:8081; returns once /readyz of the collector and the API answer 200.
# Pid files and logs go to $SURVEY_STACK_DIR (default $SURVEY_INFRA_DATA/stack). Safe to run again:
# what is running is left running. `make stack-down` (infra/stack/down.sh) stops it all.
set -euo pipefail
LOG_TAG=stack
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

REPO="$(cd "$INFRA_DIR/.." && pwd)"
RUN_DIR="${SURVEY_STACK_DIR:-$SURVEY_INFRA_DATA/stack}"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
COLLECTOR_PORT="${SURVEY_COLLECTOR_PORT:-8080}"
API_PORT="${SURVEY_API_PORT:-8081}"
WORKER_METRICS_PORT="${SURVEY_WORKER_METRICS_PORT:-8082}"
FINDINGS_METRICS_PORT="${SURVEY_FINDINGS_METRICS_PORT:-8083}"
mkdir -p "$RUN_DIR"
lock_or_wait "$RUN_DIR/.lock"

SURVEY_KAFKA_BOOTSTRAP="$(bash "$INFRA_DIR/kafka/start.sh")"
SURVEY_CLICKHOUSE_URL="${SURVEY_CLICKHOUSE_URL:-$(bash "$INFRA_DIR/clickhouse/start.sh")/survey}"
# The admin endpoint refuses everything without a token: make one for this stack unless given.
if [ -z "${SURVEY_ADMIN_TOKEN:-}" ]; then
    [ -s "$RUN_DIR/admin-token" ] || head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$RUN_DIR/admin-token"
    SURVEY_ADMIN_TOKEN="$(cat "$RUN_DIR/admin-token")"
fi
export SURVEY_KAFKA_BOOTSTRAP SURVEY_CLICKHOUSE_URL SURVEY_ADMIN_TOKEN
cd "$REPO"

log "migrate: topics on $SURVEY_KAFKA_BOOTSTRAP, tables in $SURVEY_CLICKHOUSE_URL"
"$PYTHON" -m commands.cli migrate >>"$RUN_DIR/migrate.log" 2>&1 \
    || { tail -n 30 "$RUN_DIR/migrate.log" >&2; die "migrate failed (log: $RUN_DIR/migrate.log)"; }

# role NAME ARGS... — starts `survey-ingest NAME ARGS...` unless it already runs.
role() {
    local name="$1"
    shift
    local marker="commands.cli $name"
    if pid_running "$RUN_DIR/$name.pid" "$marker"; then
        log "$name already running (pid $(cat "$RUN_DIR/$name.pid"))"
        return 0
    fi
    log "starting $name (log $RUN_DIR/$name.log)"
    start_background "$RUN_DIR/$name.pid" "$RUN_DIR/$name.log" "$PYTHON" -m commands.cli "$name" "$@"
}

ready() { "$PYTHON" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1"; }

require_port() { pid_running "$RUN_DIR/$1.pid" "commands.cli $1" || require_free_port "$1" "$2"; }
require_port collector "$COLLECTOR_PORT"
require_port api "$API_PORT"

role collector --port "$COLLECTOR_PORT"
role worker --instance-id "stack-$(hostname)-1" --metrics-port "$WORKER_METRICS_PORT"
role api --port "$API_PORT"
role findings --metrics-port "$FINDINGS_METRICS_PORT"
wait_until "collector /readyz" "$RUN_DIR/collector.pid" "commands.cli collector" "$RUN_DIR/collector.log" \
    ready "http://127.0.0.1:$COLLECTOR_PORT/readyz"
wait_until "api /readyz" "$RUN_DIR/api.pid" "commands.cli api" "$RUN_DIR/api.log" \
    ready "http://127.0.0.1:$API_PORT/readyz"
pid_running "$RUN_DIR/worker.pid" "commands.cli worker" \
    || { tail -n 30 "$RUN_DIR/worker.log" >&2; die "the worker exited (log: $RUN_DIR/worker.log)"; }

cat <<MSG
survey-ingest stack is up (logs and pid files in $RUN_DIR):
  collector  http://127.0.0.1:$COLLECTOR_PORT/v1/submissions
  api        http://127.0.0.1:$API_PORT/docs
  worker     metrics on http://127.0.0.1:$WORKER_METRICS_PORT/metrics
  findings   metrics on http://127.0.0.1:$FINDINGS_METRICS_PORT/metrics (anomaly findings role)
  kafka      $SURVEY_KAFKA_BOOTSTRAP    clickhouse $SURVEY_CLICKHOUSE_URL
  admin token: $SURVEY_ADMIN_TOKEN
Load a campaign:  SURVEY_ADMIN_TOKEN=$SURVEY_ADMIN_TOKEN $PYTHON -m commands.cli campaign load FILE --url http://127.0.0.1:$API_PORT
Stop it all:      make stack-down
MSG
