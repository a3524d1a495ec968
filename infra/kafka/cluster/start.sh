#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Starts a Kafka cluster on loopback: one KRaft node (broker + controller, infra/kafka/start.sh)
# per pair of SURVEY_KAFKA_CLUSTER_PORTS (default three), all at once (a new cluster's nodes are
# ready only together, once their quorum is), and returns once every one serves metadata listing
# itself. `start.sh N...` starts only those nodes (1-based), e.g. nodes stopped by a test.
# Prints the bootstrap address (every node, comma-separated). Nodes already running are left.
# Replication: min(3, nodes) copies of the internal topics, writes acknowledged by all but one.
# Each JVM defaults to a 384 MiB heap and the C1 compiler only (SURVEY_KAFKA_HEAP_OPTS): three of
# them on a small machine, where C2's warm-up doubled a node's restart (15 s against 6 s here).
set -euo pipefail
LOG_TAG=kafka-cluster
# shellcheck source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

[ -f "$KAFKA_LIBS/.complete" ] || bash "$KAFKA_SRC/install.sh"
mkdir -p "$SURVEY_INFRA_DATA"
if [ ! -s "$KAFKA_CLUSTER_ID_FILE" ]; then
    # base64url of 16 random bytes, not starting with '-' (it would be read as an option).
    id="-"
    while [ "${id:0:1}" = "-" ]; do
        id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    done
    echo "$id" >"$KAFKA_CLUSTER_ID_FILE"
fi
cluster_id="$(cat "$KAFKA_CLUSTER_ID_FILE")"
heap="${SURVEY_KAFKA_HEAP_OPTS:--Xms128m -Xmx384m -XX:TieredStopAtLevel=1}"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
pids=()
nodes=()
selected="$(cluster_nodes "$@")" || exit 1
for n in $selected; do
    mapfile -t node_env < <(cluster_node_env "$n")
    env "${node_env[@]}" SURVEY_KAFKA_CLUSTER_ID="$cluster_id" SURVEY_KAFKA_HEAP_OPTS="$heap" \
        bash "$KAFKA_SRC/start.sh" >"$scratch/$n.out" 2>"$scratch/$n.err" &
    pids+=("$!")
    nodes+=("$n")
done
failed=0
for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
        log "node ${nodes[$i]} did not start:"
        cat "$scratch/${nodes[$i]}.err" >&2
        failed=1
    fi
done
[ "$failed" -eq 0 ] || die "the cluster did not start (nodes' logs: $SURVEY_INFRA_DATA/kafka-<port>/kafka.log)"
log "nodes ${nodes[*]} ready ($KAFKA_CLUSTER_BOOTSTRAP)"
echo "$KAFKA_CLUSTER_BOOTSTRAP"
