#!/usr/bin/env bash
# Prints the config.d XML that makes one server started by infra/clickhouse/start.sh a node of a
# cluster; pass the file in SURVEY_CLICKHOUSE_EXTRA_CONFIG.
#   node-config.sh CLUSTER TOPOLOGY [SHARD REPLICA INTERSERVER_PORT KEEPER]
# TOPOLOGY: the shards separated by spaces, each a comma-separated list of host:tcp_port replicas,
#   e.g. "127.0.0.1:9001,127.0.0.1:9002 127.0.0.1:9003,127.0.0.1:9004" (2 shards x 2 replicas).
# With SHARD (e.g. 01), REPLICA (e.g. r1), INTERSERVER_PORT (the port replicas fetch parts from)
# and KEEPER (ZooKeeper host:port), the node also gets the {shard}/{replica} macros, its
# interserver endpoint and the keeper, for ReplicatedMergeTree (storage/cluster.py --replicated).
set -euo pipefail
[ $# -eq 2 ] || [ $# -eq 6 ] || { sed -n '2,9p' "$0" >&2; exit 2; }
cluster="$1" topology="$2"
# internal_replication: a Distributed insert writes one replica of a shard, replication the rest.
replicated=false
[ $# -eq 6 ] && replicated=true

printf '<?xml version="1.0"?>\n<yandex>\n    <remote_servers>\n        <%s>\n' "$cluster"
for shard in $topology; do
    printf '            <shard>\n                <internal_replication>%s</internal_replication>\n' "$replicated"
    for replica in ${shard//,/ }; do
        printf '                <replica><host>%s</host><port>%s</port></replica>\n' "${replica%:*}" "${replica##*:}"
    done
    printf '            </shard>\n'
done
printf '        </%s>\n    </remote_servers>\n' "$cluster"
if $replicated; then
    shard_id="$3" replica_id="$4" interserver_port="$5" keeper="$6"
    cat <<XML
    <macros>
        <shard>$shard_id</shard>
        <replica>$replica_id</replica>
    </macros>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <interserver_http_port>$interserver_port</interserver_http_port>
    <zookeeper>
        <node><host>${keeper%:*}</host><port>${keeper##*:}</port></node>
        <session_timeout_ms>10000</session_timeout_ms>
    </zookeeper>
XML
fi
printf '</yandex>\n'
