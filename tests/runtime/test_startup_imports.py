"""`serve` takes and judges its first sheet without importing the stacks only other commands and
routes need (issue 20: the first 202 within 2 s of process start, whatever the store holds).

Importing is most of what a restart costs before the process listens: on this 2-core box
pyarrow and numpy (the export route's module, and chDB's own import) took ~0.17 s of it, httpx
with the rich and click it brings ~0.15 s (benchmarks/analysis.md). Each heavy stack is imported
by the command or route that uses it (exports, reports, QR sheets, plan import, progress bars),
on first use. The distributed runtime's stacks (kafka-python, faust) have no place in the
embedded process at all.

Catches a module-level import of one of them on serve's path: the entry point's command modules,
the embedded runtime and its API routers, uvicorn's protocols, the collector, judging; and an
import of chDB or FastAPI before serve listens (the collector takes sheets into the raw log while
the store opens and the API is built behind it).
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

# What serve imports only once it listens (runtime/embedded.py's `open`): the store's engine and
# the API's framework, half of its start-up cost.
AFTER_LISTENING = ("chdb", "storage.chdb_store", "fastapi", "starlette", "api.app")


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
    assert (report["verdicts"], report["valid"]) == (1, 1), report | {"modules": "..."}
    heavy = _among(HEAVY, report["modules"])
    assert heavy == [], f"serve imported at start-up: {heavy}"
    early = _among(AFTER_LISTENING, report["listening"])
    assert early == [], f"serve imported before it listened: {early}"


def _among(names: tuple[str, ...], modules: list[str]) -> list[str]:
    loaded = set(modules)
    return sorted(
        name for name in names
        if name in loaded or any(m.startswith(name + ".") for m in loaded)
    )
