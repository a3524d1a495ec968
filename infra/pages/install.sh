#!/usr/bin/env bash
# Installs what the page tests need: Debian's chromium (Playwright's own browser download is not
# used), CJK fonts so Chinese renders in screenshots, pango for WeasyPrint (the units' PDF QR
# sheets), and the Python playwright/segno/zxing-cpp/weasyprint/axe packages into the project
# venv. Idempotent: does nothing that is already in place.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${VENV:-.venv}"

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || missing+=(fonts-noto-cjk)
dpkg -s libpango-1.0-0 >/dev/null 2>&1 || missing+=(libpango-1.0-0)
dpkg -s libpangoft2-1.0-0 >/dev/null 2>&1 || missing+=(libpangoft2-1.0-0)
if ((${#missing[@]})); then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y --no-install-recommends "${missing[@]}" \
        || { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends "${missing[@]}"; }
fi

# The Python side comes from pyproject's dev extra; install it here too so this script alone
# is enough on a machine whose venv predates the extra.
if [ -x "$VENV/bin/python" ]; then
    "$VENV/bin/python" -c "import playwright, segno, zxingcpp, PIL, weasyprint, openpyxl, axe_playwright_python" 2>/dev/null \
        || "$VENV/bin/python" -m pip install -q "playwright>=1.44" "segno>=1.6" "zxing-cpp>=2.2" "pillow>=10" \
            "weasyprint>=62" "openpyxl>=3.1" "axe-playwright-python>=0.1.8"
fi
command -v chromium
