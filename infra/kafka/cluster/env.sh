# A Kafka cluster of KRaft nodes on loopback, shared by start.sh and stop.sh (sourced, not run).
# shellcheck shell=bash source-path=SCRIPTDIR disable=SC2034 # variables for the scripts that source this
# shellcheck source=../env.sh
. "$(dirname "${BASH_SOURCE[0]}")/../env.sh"

# One broker_port:controller_port pair per node, node ids 1, 2, 3... in this order. Each node is
# infra/kafka/start.sh on its ports (its directory kafka-<broker port>/), every one a broker and
# a voter of the controller quorum.
read -r -a KAFKA_CLUSTER_NODES <<<"${SURVEY_KAFKA_CLUSTER_PORTS:-19092:19093 19094:19095 19096:19097}"
[ "${#KAFKA_CLUSTER_NODES[@]}" -ge 1 ] || die "SURVEY_KAFKA_CLUSTER_PORTS names no node"
KAFKA_CLUSTER_VOTERS=""
KAFKA_CLUSTER_BOOTSTRAP=""
for i in "${!KAFKA_CLUSTER_NODES[@]}"; do
    pair="${KAFKA_CLUSTER_NODES[$i]}"
    [[ "$pair" =~ ^[0-9]+:[0-9]+$ ]] || die "SURVEY_KAFKA_CLUSTER_PORTS: '$pair' is not broker_port:controller_port"
    KAFKA_CLUSTER_VOTERS+="${KAFKA_CLUSTER_VOTERS:+,}$((i + 1))@127.0.0.1:${pair#*:}"
    KAFKA_CLUSTER_BOOTSTRAP+="${KAFKA_CLUSTER_BOOTSTRAP:+,}127.0.0.1:${pair%:*}"
done
# The id every node's storage is formatted with, kept beside the nodes' directories (named
# after the first node's port) until the cluster is wiped.
KAFKA_CLUSTER_ID_FILE="$SURVEY_INFRA_DATA/kafka-cluster-${KAFKA_CLUSTER_NODES[0]%:*}.id"

# cluster_node_env N — the environment infra/kafka/start.sh and stop.sh need for node N (1-based).
cluster_node_env() {
    local pair="${KAFKA_CLUSTER_NODES[$(($1 - 1))]}"
    printf '%s\n' "SURVEY_KAFKA_PORT=${pair%:*}" "SURVEY_KAFKA_CONTROLLER_PORT=${pair#*:}" \
        "SURVEY_KAFKA_NODE_ID=$1" "SURVEY_KAFKA_QUORUM_VOTERS=$KAFKA_CLUSTER_VOTERS" \
        "SURVEY_KAFKA_REPLICATION=$((${#KAFKA_CLUSTER_NODES[@]} < 3 ? ${#KAFKA_CLUSTER_NODES[@]} : 3))"
}

# cluster_nodes [N...] — the node numbers given (checked), or every node.
cluster_nodes() {
    if [ $# -eq 0 ]; then
        seq 1 "${#KAFKA_CLUSTER_NODES[@]}"
        return
    fi
    local n
    for n in "$@"; do
        [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le "${#KAFKA_CLUSTER_NODES[@]}" ] \
            || die "no node '$n' (nodes 1 to ${#KAFKA_CLUSTER_NODES[@]})"
        echo "$n"
    done
}
