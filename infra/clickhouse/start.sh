#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Starts a ClickHouse server in the background on 127.0.0.1 ($SURVEY_CLICKHOUSE_TCP_PORT native,
# $SURVEY_CLICKHOUSE_HTTP_PORT HTTP), with its own config, data and logs under
# $SURVEY_INFRA_DATA/clickhouse-<tcp port>, and returns once `SELECT 1` answers.
# Prints clickhouse://127.0.0.1:<tcp port> on stdout. Safe to call when it is already running.
#
# Optional: SURVEY_CLICKHOUSE_EXTRA_CONFIG, space-separated XML files copied into the server's
# config.d/ (merged over config.xml), e.g. a <remote_servers> cluster of several such servers.
set -euo pipefail
LOG_TAG=clickhouse
# shellcheck source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

ready() { clickhouse-client --host 127.0.0.1 --port "$CH_TCP_PORT" --query 'SELECT 1'; }
what="ClickHouse on 127.0.0.1:$CH_TCP_PORT"
lock_or_wait "$CH_HOME.lock"

if pid_running "$CH_PIDFILE" "$CH_CONFIG"; then
    log "already running (pid $(cat "$CH_PIDFILE")); waiting until it is ready"
    wait_until "$what" "$CH_PIDFILE" "$CH_CONFIG" "$CH_LOG" ready
    echo "clickhouse://127.0.0.1:$CH_TCP_PORT"
    exit 0
fi

if ! { have clickhouse-server && have clickhouse-client; }; then
    bash "$INFRA_DIR/clickhouse/install.sh"
fi
require_free_port "ClickHouse (tcp)" "$CH_TCP_PORT"
require_free_port "ClickHouse (http)" "$CH_HTTP_PORT"

mkdir -p "$CH_HOME"/{etc/config.d,data,tmp,user_files,log}
rm -f "$CH_HOME"/etc/config.d/*.xml
for extra in ${SURVEY_CLICKHOUSE_EXTRA_CONFIG:-}; do
    cp "$extra" "$CH_HOME/etc/config.d/"
done

# Written on every start so a changed script takes effect; the data survives restarts.
# 18.16 reads XML with a <yandex> root (newer releases also accept <clickhouse>). No
# interserver_http_port: it is only for replication, and a fixed one would clash between servers.
cat >"$CH_CONFIG" <<XML
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>$CH_HOME/log/clickhouse-server.log</log>
        <errorlog>$CH_HOME/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>$CH_TCP_PORT</tcp_port>
    <http_port>$CH_HTTP_PORT</http_port>
    <path>$CH_HOME/data/</path>
    <tmp_path>$CH_HOME/tmp/</tmp_path>
    <user_files_path>$CH_HOME/user_files/</user_files_path>
    <users_config>$CH_HOME/etc/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <!-- A fixed zone, so DateTime rendering does not depend on the machine's. -->
    <timezone>UTC</timezone>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <!-- The defaults (8 GiB / 5 GiB) are sized for a dedicated host; two servers share this one. -->
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <mlock_executable>false</mlock_executable>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
</yandex>
XML

# The default user: no password, loopback only, no quota limits.
cat >"$CH_HOME/etc/users.xml" <<'XML'
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
XML

log "starting $what (http :$CH_HTTP_PORT, data $CH_HOME)"
# Runs in the foreground of its own session (not --daemon), as the invoking user (root here and
# in CI; the server accepts that), so the pid we record is the server's.
start_background "$CH_PIDFILE" "$CH_LOG" clickhouse-server --config-file="$CH_CONFIG"
wait_until "$what" "$CH_PIDFILE" "$CH_CONFIG" "$CH_LOG" ready
log "ready (pid $(cat "$CH_PIDFILE"))"
echo "clickhouse://127.0.0.1:$CH_TCP_PORT"
