#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Installs what the benchmarks drive load with: Debian's wrk (HTTP load generator). Idempotent.
set -euo pipefail
LOG_TAG=bench-install
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

if have wrk; then
    log "wrk already installed"
    exit 0
fi
apt_install wrk
have wrk || die "wrk missing after the install"
log "installed: $(command -v wrk)"
