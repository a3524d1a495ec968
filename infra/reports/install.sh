#!/usr/bin/env bash
# Installs what `survey-ingest report` and its tests need beyond the Python packages: a CJK font
# (Debian's fonts-noto-cjk) so Chinese renders in the charts, and poppler-utils (pdftoppm) with
# which the tests turn report.pdf into images. Also makes sure matplotlib and jieba are in the
# venv, and that matplotlib's font cache sees the font. Idempotent: does nothing already done.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${VENV:-.venv}"

missing=()
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || missing+=(fonts-noto-cjk)
command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
if ((${#missing[@]})); then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y --no-install-recommends "${missing[@]}" \
        || { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends "${missing[@]}"; }
fi

if [ -x "$VENV/bin/python" ]; then
    "$VENV/bin/python" -c "import matplotlib, jieba" 2>/dev/null \
        || "$VENV/bin/python" -m pip install -q "matplotlib>=3.8" "jieba>=0.42"
    # Fails (and so fails `make`) when no CJK font is visible to matplotlib.
    "$VENV/bin/python" -c "from reports.fonts import configure; print(configure(required=True))"
fi
command -v pdftoppm
