#!/usr/bin/env bash
# Installs Prometheus and promtool (Debian package) for the monitoring tests; safe to run again.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

if have prometheus && have promtool; then
    echo "prometheus already installed: $(prometheus --version 2>&1 | head -n1)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    have sudo || { echo "install.sh: need root or sudo to apt-get install prometheus" >&2; exit 1; }
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
# The package's post-install starts a system service where an init system exists; the tests start
# their own server on a free port, so that service is neither needed nor in the way.
if ! $SUDO apt-get install -y --no-install-recommends prometheus; then
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends prometheus
fi

have prometheus && have promtool || { echo "install.sh: prometheus/promtool not on PATH after install" >&2; exit 1; }
echo "installed: $(prometheus --version 2>&1 | head -n1)"
