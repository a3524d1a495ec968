#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Starts a single-node Kafka broker (KRaft: broker and controller in one JVM, no ZooKeeper) on
# 127.0.0.1:$SURVEY_KAFKA_PORT in the background, and returns once it serves metadata.
# Prints the bootstrap address on stdout. Safe to call when it is already running.
set -euo pipefail
LOG_TAG=kafka
# shellcheck source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

ready() { python3 "$KAFKA_SRC/ready.py" 127.0.0.1 "$KAFKA_PORT"; }

have python3 || die "python3 is needed for the readiness check"
lock_or_wait "$KAFKA_HOME.lock"
if pid_running "$KAFKA_PIDFILE" "$KAFKA_CONFIG"; then
    log "already running (pid $(cat "$KAFKA_PIDFILE")); waiting until it is ready"
    wait_until "Kafka on 127.0.0.1:$KAFKA_PORT" "$KAFKA_PIDFILE" "$KAFKA_CONFIG" "$KAFKA_LOG" ready
    echo "127.0.0.1:$KAFKA_PORT"
    exit 0
fi

[ -f "$KAFKA_LIBS/.complete" ] || bash "$KAFKA_SRC/install.sh"
require_free_port "Kafka" "$KAFKA_PORT"
require_free_port "Kafka controller" "$KAFKA_CONTROLLER_PORT"

mkdir -p "$KAFKA_HOME/data"
# Written on every start so a changed script takes effect; the data survives restarts.
cat >"$KAFKA_CONFIG" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_HOME/data
num.partitions=4
auto.create.topics.enable=true
# One node: every internal topic has exactly one replica.
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
# Fewer partitions for the internal topics than the default 50: the first consumer group or
# transaction of a test run then waits for 8 partitions to be created, not 50.
offsets.topic.num.partitions=8
transaction.state.log.num.partitions=8
# Consumer groups form at once instead of waiting 3 s for more members.
group.initial.rebalance.delay.ms=0
PROPS

cat >"$KAFKA_HOME/log4j.properties" <<'PROPS'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.clients=WARN
PROPS

# Heap and GC as in kafka-server-start.sh / kafka-run-class.sh, with a smaller heap.
read -r -a jvm_opts <<<"${SURVEY_KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
-XX:InitiatingHeapOccupancyPercent=35 -Djava.awt.headless=true \
-Dlog4j.configuration=file:$KAFKA_HOME/log4j.properties"
classpath="$KAFKA_LIBS/*"

if [ ! -f "$KAFKA_HOME/data/meta.properties" ]; then
    # A KRaft log directory must be formatted with a cluster id before the first start.
    # base64url of 16 random bytes; one starting with '-' would be read as an option (1 in 64).
    cluster_id="-"
    while [ "${cluster_id:0:1}" = "-" ]; do
        cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    done
    log "formatting $KAFKA_HOME/data (cluster id $cluster_id)"
    java "${jvm_opts[@]}" -cp "$classpath" kafka.tools.StorageTool format \
        -t "$cluster_id" -c "$KAFKA_CONFIG" --ignore-formatted >>"$KAFKA_LOG" 2>&1 \
        || { tail -n 20 "$KAFKA_LOG" >&2; die "formatting the storage failed (log: $KAFKA_LOG)"; }
fi

log "starting Kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (controller :$KAFKA_CONTROLLER_PORT, log $KAFKA_LOG)"
start_background "$KAFKA_PIDFILE" "$KAFKA_LOG" java "${jvm_opts[@]}" -cp "$classpath" kafka.Kafka "$KAFKA_CONFIG"
wait_until "Kafka on 127.0.0.1:$KAFKA_PORT" "$KAFKA_PIDFILE" "$KAFKA_CONFIG" "$KAFKA_LOG" ready
log "ready (pid $(cat "$KAFKA_PIDFILE"))"
echo "127.0.0.1:$KAFKA_PORT"
