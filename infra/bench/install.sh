#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Installs what the benchmarks drive load with and measure against, idempotently:
# - Debian's wrk (HTTP load generator);
# - Kafka's own tools (kafka-tools: ProducerPerformance, the producer ceiling of
#   benchmarks/bench_ceilings.py) at the broker's version, fetched from Maven Central like the
#   broker's jars (infra/kafka/install.sh) into $SURVEY_INFRA_HOME/kafka-tools-<version>/libs.
set -euo pipefail
LOG_TAG=bench-install
# shellcheck source=../kafka/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/../kafka/env.sh"

install_wrk() {
    if have wrk; then
        log "wrk already installed"
        return
    fi
    apt_install wrk
    have wrk || die "wrk missing after the install"
    log "installed: $(command -v wrk)"
}

install_kafka_tools() {
    local libs="$SURVEY_INFRA_HOME/kafka-tools-$KAFKA_VERSION/libs"
    lock_or_wait "$SURVEY_INFRA_HOME/kafka-tools-$KAFKA_VERSION.lock"
    if [ -f "$libs/.complete" ]; then
        log "kafka-tools $KAFKA_VERSION already in $libs"
        return
    fi
    have java || apt_install default-jre-headless
    have mvn || apt_install maven
    log "fetching kafka-tools $KAFKA_VERSION with Maven"
    mkdir -p "$(dirname "$libs")"
    # A scratch directory renamed at the end: an interrupted run leaves no half-filled libs/.
    local tmp
    tmp="$(mktemp -d "$libs.tmp.XXXXXX")"
    # shellcheck disable=SC2064 # $tmp is meant to be expanded now
    trap "rm -rf '$tmp' '$tmp.log'" EXIT
    mvn -B -ntp -f "$INFRA_DIR/bench/kafka-tools-pom.xml" -Dkafka.version="$KAFKA_VERSION" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" \
        >"$tmp.log" 2>&1 \
        || { tail -n 40 "$tmp.log" >&2; die "mvn dependency:copy-dependencies failed for kafka-tools"; }
    [ -f "$tmp/kafka-tools-$KAFKA_VERSION.jar" ] || die "Maven did not fetch kafka-tools-$KAFKA_VERSION.jar"
    touch "$tmp/.complete"
    rm -rf "$libs"
    mv "$tmp" "$libs"
    log "kafka-tools $KAFKA_VERSION: $(find "$libs" -name '*.jar' | wc -l) jars in $libs"
}

install_wrk
install_kafka_tools
