"""How long work says how far it has got: the caller hands down a `Progress`
(commands/progress.py draws one on a terminal); `SILENT`, the default, does nothing."""

from __future__ import annotations

from typing import Final, Protocol


class Progress(Protocol):
    def stage(self, what: str, total: int | None, unit: str = "items") -> None:
        """A new stage of the work: `total` steps of `unit` (None: not known)."""

    def advance(self, steps: int = 1) -> None:
        """`steps` more of the current stage are done."""


class _Silent:
    def stage(self, what: str, total: int | None, unit: str = "items") -> None:
        pass

    def advance(self, steps: int = 1) -> None:
        pass


SILENT: Final[Progress] = _Silent()
