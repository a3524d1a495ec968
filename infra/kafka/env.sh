# Kafka settings shared by install.sh, start.sh and stop.sh (sourced, not run).
# shellcheck shell=bash source-path=SCRIPTDIR disable=SC2034 # variables for the scripts that source this
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

KAFKA_SRC="$INFRA_DIR/kafka"
# The version is pinned in one place, pom.xml's <kafka.version>.
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_SRC/pom.xml")"
[ -n "$KAFKA_VERSION" ] || die "no <kafka.version> in $KAFKA_SRC/pom.xml"
KAFKA_LIBS="$SURVEY_INFRA_HOME/kafka-$KAFKA_VERSION/libs"

KAFKA_PORT="${SURVEY_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${SURVEY_KAFKA_CONTROLLER_PORT:-9093}"
# One node of a cluster (infra/kafka/cluster/start.sh sets these): its id, every controller of
# the quorum (id@host:port, comma-separated), the cluster id its storage is formatted with, and
# how many copies the internal topics (and topics created with the broker's default) get.
KAFKA_NODE_ID="${SURVEY_KAFKA_NODE_ID:-1}"
KAFKA_QUORUM_VOTERS="${SURVEY_KAFKA_QUORUM_VOTERS:-$KAFKA_NODE_ID@127.0.0.1:$KAFKA_CONTROLLER_PORT}"
KAFKA_CLUSTER_ID="${SURVEY_KAFKA_CLUSTER_ID:-}"
KAFKA_REPLICATION="${SURVEY_KAFKA_REPLICATION:-1}"
# Everything of one broker lives in a directory named after its port, so brokers on other
# ports (a test run beside `make stack`) never share state.
KAFKA_HOME="$SURVEY_INFRA_DATA/kafka-$KAFKA_PORT"
KAFKA_CONFIG="$KAFKA_HOME/server.properties"
KAFKA_PIDFILE="$KAFKA_HOME/kafka.pid"
KAFKA_LOG="$KAFKA_HOME/kafka.log"
