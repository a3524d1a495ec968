#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Fetches the Kafka broker's jars (pom.xml) from Maven Central into
# $SURVEY_INFRA_HOME/kafka-<version>/libs. Does nothing when they are already there.
set -euo pipefail
LOG_TAG=kafka-install
# shellcheck source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

# Parallel installs (two brokers' start.sh at once) take turns; the second then finds the jars.
lock_or_wait "$SURVEY_INFRA_HOME/kafka-$KAFKA_VERSION.lock"
if [ -f "$KAFKA_LIBS/.complete" ]; then
    log "Kafka $KAFKA_VERSION jars already in $KAFKA_LIBS"
    exit 0
fi

# Both come with the machine image; install them only where they don't (Debian's default JRE is 17).
have java || apt_install default-jre-headless
have mvn || apt_install maven
java_major="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
[ "${java_major%%.*}" -ge 11 ] 2>/dev/null || die "Kafka $KAFKA_VERSION needs Java 11+, found '${java_major}'"

log "fetching Kafka $KAFKA_VERSION jars with Maven"
mkdir -p "$(dirname "$KAFKA_LIBS")"
# Download into a scratch directory and rename at the end: an interrupted run leaves no
# half-filled libs/ that a later run would take as complete.
tmp="$(mktemp -d "$KAFKA_LIBS.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# Maven's output is kept for a failure only (quiet mode still prints stray colour codes).
mvn -B -ntp -f "$KAFKA_SRC/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp" >"$tmp.log" 2>&1 \
    || { tail -n 40 "$tmp.log" >&2; die "mvn dependency:copy-dependencies failed (full output: $tmp.log)"; }
rm -f "$tmp.log"
[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ] || die "Maven did not fetch kafka_2.13-$KAFKA_VERSION.jar"
touch "$tmp/.complete"
rm -rf "$KAFKA_LIBS"
mv "$tmp" "$KAFKA_LIBS"
log "Kafka $KAFKA_VERSION: $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars in $KAFKA_LIBS"
