"""The progress display of the long commands (export, replay, reconcile, report, erase): rich, on
stderr, one line per stage with its count, rate and ETA. Drawn when stderr is a terminal, or
when asked (SURVEY_PROGRESS=always); never when piped or in tests (auto), nor with `never`.

rich is imported when a display is drawn: every command line imports this module."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from core.progress import SILENT, Progress
from schemas.settings import Settings


class _Bar:
    """core.progress.Progress over a rich display: each stage a line of its own."""

    def __init__(self, display: Any) -> None:
        self._display = display
        self._task: Any = None

    def stage(self, what: str, total: int | None, unit: str = "items") -> None:
        self.finish()
        self._task = self._display.add_task(what, total=total, unit=unit)

    def advance(self, steps: int = 1) -> None:
        if self._task is not None:
            self._display.advance(self._task, steps)

    def finish(self) -> None:
        if self._task is None:
            return
        task = self._display.tasks[self._task]
        if task.total is None:  # an unknown total ends where it got
            self._display.update(self._task, total=task.completed)


@contextmanager
def progress_bar(settings: Settings, *, quiet: bool = False,
                 console: Any = None) -> Iterator[Progress]:
    """A Progress to hand down to the work: drawn on stderr (or `console`) when stderr is a
    terminal or settings.progress is "always"; else SILENT."""
    if quiet or settings.progress == "never":
        yield SILENT
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        ProgressColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as Display
    from rich.text import Text

    if console is None:
        console = Console(stderr=True, force_terminal=settings.progress == "always" or None)
    if not console.is_terminal:
        yield SILENT
        return

    class Rate(ProgressColumn):
        def render(self, task: Task) -> Text:
            return Text(f"{task.speed or 0:,.0f} {task.fields.get('unit', '')}/s")

    with Display(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), Rate(),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        # stdout is the command's own output (replay prints while it runs): left alone.
        console=console, transient=False, redirect_stdout=False,
    ) as display:
        bar = _Bar(display)
        try:
            yield bar
        finally:
            bar.finish()
