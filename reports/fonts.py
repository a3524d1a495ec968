"""The CJK font charts are drawn with, found through matplotlib's font manager.

infra/reports/install.sh installs Debian's fonts-noto-cjk; any other installed CJK family in
PREFERRED works too. Without one, Chinese would render as empty boxes, so `configure` says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot anywhere in the process

from matplotlib import font_manager

log = logging.getLogger(__name__)

# Simplified-Chinese faces first: the same ideographs take their mainland shapes.
PREFERRED: Final = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Noto Serif CJK SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "Noto Sans CJK JP",
)


class MissingCJKFont(RuntimeError):
    """No font that covers Chinese is installed (run infra/reports/install.sh)."""


@dataclass(frozen=True)
class CJKFont:
    name: str
    path: str


def find_cjk_font() -> CJKFont | None:
    found = _lookup()
    if found is None:
        # Fonts installed after matplotlib built its font cache are not in it: add them.
        for path in font_manager.findSystemFonts():
            if any(hint in Path(path).name for hint in _FILE_HINTS):
                font_manager.fontManager.addfont(path)
        found = _lookup()
    return found


_FILE_HINTS: Final = ("CJK", "wqy", "DroidSansFallback", "SourceHan")


def _lookup() -> CJKFont | None:
    by_name: dict[str, str] = {}
    for entry in font_manager.fontManager.ttflist:
        # Regular weight when there is a choice: the first entry may be a Bold face.
        if entry.name not in by_name or entry.weight in (400, "normal", "regular"):
            by_name[entry.name] = entry.fname
    for name in PREFERRED:
        if name in by_name:
            return CJKFont(name, by_name[name])
    return None


def configure(*, required: bool = False) -> CJKFont | None:
    """Point matplotlib's sans-serif family at the CJK font (Latin falls back to DejaVu)."""
    font = find_cjk_font()
    if font is None:
        message = "no CJK font found (install fonts-noto-cjk: infra/reports/install.sh)"
        if required:
            raise MissingCJKFont(message)
        log.warning("%s; Chinese text in charts will not render", message)
    matplotlib.rcParams["font.family"] = "sans-serif"
    matplotlib.rcParams["font.sans-serif"] = [
        *([font.name] if font else []), "DejaVu Sans",
    ]
    matplotlib.rcParams["axes.unicode_minus"] = False  # the CJK face lacks U+2212
    return font
