# ZooKeeper (the keeper ClickHouse 18.16 needs for ReplicatedMergeTree and ON CLUSTER DDL)
# settings shared by keeper-start.sh and keeper-stop.sh (sourced, not run).
# shellcheck shell=bash source-path=SCRIPTDIR disable=SC2034 # variables for the scripts that source this
# shellcheck source=../../kafka/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../kafka/env.sh"

# ZooKeeper's jars come with Kafka 3.9's runtime classpath (zookeeper-3.8.x.jar, still shipped
# for Kafka's ZooKeeper mode): infra/kafka/install.sh fetches them, nothing else is downloaded.
ZK_PORT="${SURVEY_ZOOKEEPER_PORT:-2181}"
ZK_HOME="$SURVEY_INFRA_DATA/zookeeper-$ZK_PORT"
ZK_CONFIG="$ZK_HOME/zoo.cfg"
ZK_PIDFILE="$ZK_HOME/zookeeper.pid"
ZK_LOG="$ZK_HOME/zookeeper.log"
