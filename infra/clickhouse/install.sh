#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Installs Debian's ClickHouse server and client (bookworm: 18.16.1) with apt-get when missing.
# The package's own service is never started: start.sh runs private servers instead.
set -euo pipefail
LOG_TAG=clickhouse-install
# shellcheck source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

if have clickhouse-server && have clickhouse-client; then
    log "ClickHouse already installed: $(clickhouse-client --version 2>&1 | head -n1)"
    exit 0
fi

# The package's postinst runs `invoke-rc.d clickhouse-server start`: a system server on 9000/8123
# that would take our default ports. Container images usually forbid that with a policy-rc.d
# that exits 101; put one in place for the install where there is none.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ] && [ -w "$(dirname "$policy")" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
fi
apt_install clickhouse-server clickhouse-client

if ! { have clickhouse-server && have clickhouse-client; }; then
    die "clickhouse-server/clickhouse-client not on PATH after the install"
fi
log "installed: $(clickhouse-client --version 2>&1 | head -n1)"
