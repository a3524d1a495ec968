#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Starts a single-node ZooKeeper on 127.0.0.1:$SURVEY_ZOOKEEPER_PORT (default 2181) in the
# background, for replicated ClickHouse tables; returns once it answers `ruok` with `imok`.
# Prints 127.0.0.1:<port>. Safe to call when it is already running. A test keeper: one node, no
# quorum; production runs three (or ClickHouse Keeper on releases that have it).
set -euo pipefail
# shellcheck disable=SC2034 # read by lib.sh's log()
LOG_TAG=zookeeper
# shellcheck source=keeper-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/keeper-env.sh"

ready() { python3 - "$ZK_PORT" <<'PY'
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2) as s:
    s.sendall(b"ruok")
    sys.exit(0 if s.recv(4) == b"imok" else 1)
PY
}
what="ZooKeeper on 127.0.0.1:$ZK_PORT"
have python3 || die "python3 is needed for the readiness check"
lock_or_wait "$ZK_HOME.lock"
if pid_running "$ZK_PIDFILE" "$ZK_CONFIG"; then
    log "already running (pid $(cat "$ZK_PIDFILE")); waiting until it is ready"
    wait_until "$what" "$ZK_PIDFILE" "$ZK_CONFIG" "$ZK_LOG" ready
    echo "127.0.0.1:$ZK_PORT"
    exit 0
fi

[ -f "$KAFKA_LIBS/.complete" ] || bash "$KAFKA_SRC/install.sh"
compgen -G "$KAFKA_LIBS/zookeeper-[0-9]*.jar" >/dev/null || die "no zookeeper jar in $KAFKA_LIBS"
require_free_port "ZooKeeper" "$ZK_PORT"
mkdir -p "$ZK_HOME/data"
# Written on every start; the data survives restarts. No admin server: it would take :8080.
cat >"$ZK_CONFIG" <<CFG
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$ZK_HOME/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok,stat,mntr
autopurge.snapRetainCount=3
autopurge.purgeInterval=1
CFG
cat >"$ZK_HOME/log4j.properties" <<'PROPS'
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
PROPS

log "starting $what (data $ZK_HOME)"
start_background "$ZK_PIDFILE" "$ZK_LOG" java -Xms64m -Xmx256m -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$ZK_HOME/log4j.properties" -cp "$KAFKA_LIBS/*" \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$ZK_CONFIG"
wait_until "$what" "$ZK_PIDFILE" "$ZK_CONFIG" "$ZK_LOG" ready
log "ready (pid $(cat "$ZK_PIDFILE"))"
echo "127.0.0.1:$ZK_PORT"
