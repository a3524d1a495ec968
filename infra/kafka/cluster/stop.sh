#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Stops the nodes of the cluster infra/kafka/cluster/start.sh runs (all, or `stop.sh N...`), at
# once: SIGTERM, SIGKILL after $SURVEY_INFRA_TIMEOUT s. Idempotent. `stop.sh --wipe` also deletes
# their data, configs and logs (and, when every node is wiped, the cluster id).
set -euo pipefail
LOG_TAG=kafka-cluster
# shellcheck source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

wipe=()
if [ "${1:-}" = "--wipe" ]; then
    wipe=(--wipe)
    shift
fi
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
pids=()
selected="$(cluster_nodes "$@")" || exit 1
for n in $selected; do
    mapfile -t node_env < <(cluster_node_env "$n")
    env "${node_env[@]}" bash "$KAFKA_SRC/stop.sh" "${wipe[@]}" 2>"$scratch/$n.err" &
    pids+=("$!")
done
failed=0
for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
done
cat "$scratch"/*.err >&2 2>/dev/null || true
[ "$failed" -eq 0 ] || die "a node did not stop"
if [ "${#wipe[@]}" -gt 0 ] && [ $# -eq 0 ]; then
    rm -f "$KAFKA_CLUSTER_ID_FILE"
fi
