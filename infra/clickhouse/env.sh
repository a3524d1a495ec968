# ClickHouse settings shared by install.sh, start.sh and stop.sh (sourced, not run).
# shellcheck shell=bash source-path=SCRIPTDIR disable=SC2034 # variables for the scripts that source this
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

CH_TCP_PORT="${SURVEY_CLICKHOUSE_TCP_PORT:-9000}"
CH_HTTP_PORT="${SURVEY_CLICKHOUSE_HTTP_PORT:-8123}"
# Every path derives from the TCP port, so servers on different ports (the shards of a
# distributed setup, or a test server beside `make stack`) run side by side.
CH_HOME="$SURVEY_INFRA_DATA/clickhouse-$CH_TCP_PORT"
CH_CONFIG="$CH_HOME/etc/config.xml"
CH_PIDFILE="$CH_HOME/clickhouse.pid"
CH_LOG="$CH_HOME/log/stdout.log"
