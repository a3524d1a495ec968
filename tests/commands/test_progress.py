"""The long commands' progress display (commands/progress.py): count, rate and ETA on a
terminal or when asked; nothing when piped, and the command's own output unchanged."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from commands.progress import progress_bar
from core.progress import SILENT
from schemas.settings import Settings
from simulation import EXAMPLE_CAMPAIGN

ROOT = Path(__file__).resolve().parents[2]


def test_a_terminal_shows_the_count_the_rate_and_the_eta(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Also breaks if what the command prints meanwhile is taken from stdout."""
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with progress_bar(Settings(), console=console) as progress:
        progress.stage("export", 30, "rows")
        for _ in range(3):
            progress.advance(10)
            print('{"line": "of output"}')
        progress.stage("compare", None, "campaigns")  # the first line stays, complete
        progress.advance(2)
    text = out.getvalue()
    assert "export" in text and "30/30" in text and "rows/s" in text and "ETA" in text
    assert "compare" in text and "2/2" in text and "campaigns/s" in text
    assert capsys.readouterr().out == '{"line": "of output"}\n' * 3 and "of output" not in text


def test_nothing_is_drawn_when_piped_or_switched_off() -> None:
    piped = io.StringIO()
    with progress_bar(Settings(), console=Console(file=piped)) as progress:
        assert progress is SILENT
    terminal = Console(file=io.StringIO(), force_terminal=True)
    with progress_bar(Settings(progress="never"), console=terminal) as progress:
        assert progress is SILENT
    with progress_bar(Settings(), quiet=True, console=terminal) as progress:
        assert progress is SILENT
    assert piped.getvalue() == ""


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SURVEY_")}
    done = subprocess.run([sys.executable, "-m", "commands.cli", *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env={**base, **env}, check=False)
    assert done.returncode == 0, done.stderr
    return done


def test_reconcile_draws_its_progress_when_asked_and_prints_the_same(tmp_path: Path) -> None:
    """Breaks if the display goes to stdout, or is drawn on a pipe without being asked."""
    data = str(tmp_path / "data")
    _cli("campaign", "load", str(EXAMPLE_CAMPAIGN), "--data-dir", data)
    piped = _cli("reconcile", "--data-dir", data)
    asked = _cli("reconcile", "--data-dir", data, SURVEY_PROGRESS="always")
    assert "checks/s" not in piped.stderr
    assert "reconcile" in asked.stderr and "2/2" in asked.stderr and "checks/s" in asked.stderr
    assert "ETA" in asked.stderr
    assert asked.stdout == piped.stdout
