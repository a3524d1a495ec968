#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Starts a single-node Kafka broker (KRaft: broker and controller in one JVM, no ZooKeeper) on
# 127.0.0.1:$SURVEY_KAFKA_PORT in the background, and returns once it serves metadata.
# Prints the bootstrap address on stdout. Safe to call when it is already running.
# With SURVEY_KAFKA_NODE_ID, SURVEY_KAFKA_QUORUM_VOTERS, SURVEY_KAFKA_CLUSTER_ID and
# SURVEY_KAFKA_REPLICATION (env.sh) it starts one node of a cluster instead; the nodes of a new
# cluster must start together (infra/kafka/cluster/start.sh): none is ready before a quorum is.
set -euo pipefail
LOG_TAG=kafka
# shellcheck source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

ready() { python3 "$KAFKA_SRC/ready.py" 127.0.0.1 "$KAFKA_PORT" "$KAFKA_NODE_ID"; }

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
min_isr=$((KAFKA_REPLICATION > 1 ? KAFKA_REPLICATION - 1 : 1))
# Written on every start so a changed script takes effect; the data survives restarts.
cat >"$KAFKA_CONFIG" <<PROPS
process.roles=broker,controller
node.id=$KAFKA_NODE_ID
controller.quorum.voters=$KAFKA_QUORUM_VOTERS
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_HOME/data
num.partitions=4
auto.create.topics.enable=true
# One node: every internal topic has exactly one replica. In a cluster, $KAFKA_REPLICATION copies,
# a write acknowledged by all but one of them (so one broker may fail without losing it).
default.replication.factor=$KAFKA_REPLICATION
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$KAFKA_REPLICATION
transaction.state.log.replication.factor=$KAFKA_REPLICATION
transaction.state.log.min.isr=$min_isr
# Fewer partitions for the internal topics than the default 50: the first consumer group or
# transaction of a test run then waits for 8 partitions to be created, not 50.
offsets.topic.num.partitions=8
transaction.state.log.num.partitions=8
# Consumer groups form at once instead of waiting 3 s for more members.
group.initial.rebalance.delay.ms=0
PROPS
if [ "$KAFKA_REPLICATION" -gt 1 ]; then
    # A cluster: a broker that stopped heartbeating is fenced (its partitions led elsewhere)
    # after 6 s instead of 9 s.
    cat >>"$KAFKA_CONFIG" <<PROPS
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=6000
PROPS
fi

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
    # The nodes of a cluster share theirs (SURVEY_KAFKA_CLUSTER_ID).
    cluster_id="${KAFKA_CLUSTER_ID:--}"
    while [ "${cluster_id:0:1}" = "-" ]; do
        cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    done
    log "formatting $KAFKA_HOME/data (cluster id $cluster_id)"
    java "${jvm_opts[@]}" -cp "$classpath" kafka.tools.StorageTool format \
        -t "$cluster_id" -c "$KAFKA_CONFIG" --ignore-formatted >>"$KAFKA_LOG" 2>&1 \
        || { tail -n 20 "$KAFKA_LOG" >&2; die "formatting the storage failed (log: $KAFKA_LOG)"; }
fi

log "starting Kafka $KAFKA_VERSION node $KAFKA_NODE_ID on 127.0.0.1:$KAFKA_PORT (controller :$KAFKA_CONTROLLER_PORT, log $KAFKA_LOG)"
start_background "$KAFKA_PIDFILE" "$KAFKA_LOG" java "${jvm_opts[@]}" -cp "$classpath" kafka.Kafka "$KAFKA_CONFIG"
wait_until "Kafka on 127.0.0.1:$KAFKA_PORT" "$KAFKA_PIDFILE" "$KAFKA_CONFIG" "$KAFKA_LOG" ready
log "ready (pid $(cat "$KAFKA_PIDFILE"))"
echo "127.0.0.1:$KAFKA_PORT"
