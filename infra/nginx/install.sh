#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Installs Debian's nginx (bookworm: 1.22) with apt-get when missing. The package's own service
# (port 80, /etc/nginx) is never started: start.sh runs private balancers instead.
set -euo pipefail
LOG_TAG=nginx-install
# shellcheck source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

if have nginx || [ -x /usr/sbin/nginx ]; then
    log "nginx already installed: $(/usr/sbin/nginx -v 2>&1 | head -n1)"
    exit 0
fi

# The package's postinst starts the system service on port 80; forbid that for the install as
# infra/clickhouse/install.sh does (container images usually have such a policy-rc.d already).
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ] && [ -w "$(dirname "$policy")" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
fi
apt_install nginx

[ -x /usr/sbin/nginx ] || die "/usr/sbin/nginx missing after the install"
log "installed: $(/usr/sbin/nginx -v 2>&1 | head -n1)"
