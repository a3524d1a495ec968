#!/usr/bin/env bash
# Installs what `survey-ingest report` and its tests need beyond the Python packages: a CJK font
# (Debian's fonts-noto-cjk) so Chinese renders in the charts and the PDF, pango (WeasyPrint lays
# the PDF out with it: libpango-1.0-0, libpangoft2-1.0-0) and poppler-utils (pdftoppm,
# pdftotext) with which the tests read report.pdf. Also makes sure the report's Python packages
# are in the venv (matplotlib, jieba, svy, weasyprint, python-docx, rich), and that
# matplotlib's font cache sees the font. Idempotent: does nothing already done.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${VENV:-.venv}"

missing=()
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || missing+=(fonts-noto-cjk)
command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
command -v pdftotext >/dev/null 2>&1 || missing+=(poppler-utils)
dpkg -s libpango-1.0-0 >/dev/null 2>&1 || missing+=(libpango-1.0-0)
dpkg -s libpangoft2-1.0-0 >/dev/null 2>&1 || missing+=(libpangoft2-1.0-0)
if ((${#missing[@]})); then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y --no-install-recommends "${missing[@]}" \
        || { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends "${missing[@]}"; }
fi

if [ -x "$VENV/bin/python" ]; then
    "$VENV/bin/python" -c "import matplotlib, jieba, svy, weasyprint, docx, rich" 2>/dev/null \
        || "$VENV/bin/python" -m pip install -q "matplotlib>=3.8" "jieba>=0.42" "svy>=0.35" \
            "polars>=1.0" "weasyprint>=62" "python-docx>=1.1" "rich>=13"
    # Fails (and so fails `make`) when no CJK font is visible to matplotlib.
    "$VENV/bin/python" -c "from reports.fonts import configure; print(configure(required=True))"
fi
command -v pdftoppm
command -v pdftotext
