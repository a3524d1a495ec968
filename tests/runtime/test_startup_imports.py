"""`serve` takes and judges its first sheet without importing the stacks only other commands and
routes need (issue 20: the first 202 within 2 s of process start, whatever the store holds).

Importing is most of what a restart costs before the process listens: pyarrow and numpy alone
took ~0.4 s of it on this 2-core box, matplotlib, weasyprint, polars, svy or pandas as much
again each. Each is imported by the command or route that uses it (exports, reports, QR sheets,
plan import, progress bars), on first use. The distributed runtime's stacks (kafka-python,
faust) have no place in the embedded process at all.

Catches a module-level import of one of them on serve's path: the entry point's command modules,
the embedded runtime and its API routers, uvicorn's protocols, the collector, judging.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import campaign_definition, sheet

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGN = "startup-2026"

# Top-level packages (and our own heavy modules) that serve must not import to take and judge
# a sheet.
HEAVY = (
    "pyarrow", "numpy", "pandas", "polars", "matplotlib", "weasyprint", "docx", "svy", "segno",
    "jieba", "xlsxwriter", "pyreadstat", "openpyxl", "rich", "kafka", "aiokafka", "faust",
    "clickhouse_driver", "exports.run", "exports.writers", "reports.build", "reports.render",
)


def test_serve_takes_and_judges_a_sheet_without_the_heavy_stacks(tmp_path: Path) -> None:
    definition = tmp_path / "definition.json"
    definition.write_text(json.dumps(campaign_definition(CAMPAIGN)), encoding="utf-8")
    body = tmp_path / "sheet.json"
    body.write_text(json.dumps(sheet(CAMPAIGN), ensure_ascii=False), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "tests.runtime.startup_probe", str(tmp_path / "data"),
         str(definition), str(body)],
        cwd=tmp_path, capture_output=True, text=True, timeout=240,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("SURVEY_")},
             "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["status"] == 202 and report["judged"], report | {"modules": "..."}
    loaded = set(report["modules"])
    heavy = sorted(
        name for name in HEAVY
        if name in loaded or any(m.startswith(name + ".") for m in loaded)
    )
    assert heavy == [], f"serve imported at start-up: {heavy}"
