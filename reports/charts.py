"""The report's charts as SVG (matplotlib, text kept as text so the PDF's Chinese font draws
it). Charts illustrate; the tables beside them carry the figures."""

from __future__ import annotations

import io
import logging
import textwrap
from collections.abc import Sequence

from matplotlib.figure import Figure

from reports.model import CurvePoint, QuestionResult, RegionIndex

# Scale points are labels ("1".."5"), which matplotlib notes at INFO on every chart.
logging.getLogger("matplotlib.category").setLevel(logging.WARNING)

ACCENT = "#1565c0"
GREY = "#9e9e9e"


def _svg(fig: Figure) -> str:
    import matplotlib

    matplotlib.rcParams["svg.fonttype"] = "none"
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg"):]


def error_bars(low: Sequence[float], share: Sequence[float], high: Sequence[float]
               ) -> tuple[list[float], list[float]]:
    """Lengths below and above each bar; never negative (an interval is clamped to hold its
    share exactly, see stats.wilson_share; max() guards any other caller)."""
    return ([max(0.0, s - lo) for lo, s in zip(low, share, strict=True)],
            [max(0.0, hi - s) for s, hi in zip(share, high, strict=True)])


def shares_chart(q: QuestionResult) -> str:
    opts = q.options[::-1]
    height = 0.9 + 0.32 * len(opts)
    fig = Figure(figsize=(6.3, height))
    ax = fig.subplots()
    labels = ["\n".join(textwrap.wrap(o.option, 14)) for o in opts]
    w = [o.weighted for o in opts]
    share = [100 * e.value if e else 0.0 for e in w]
    low = [100 * e.low if e else 0.0 for e in w]
    high = [100 * e.high if e else 0.0 for e in w]
    raw = [100 * o.share.share for o in opts]
    below, above = error_bars(low, share, high)
    ax.barh(labels, share, xerr=[below, above], color=ACCENT, ecolor="black", capsize=2,
            label="加权")
    ax.scatter(raw, labels, color=GREY, marker="|", s=120, zorder=3, label="未加权")
    ax.set_xlim(0, max([*high, *raw, 1.0]) * 1.15)
    ax.set_xlabel("%", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=7, loc="lower right")
    return _svg(fig)


def curve_chart(curve: Sequence[CurvePoint]) -> str:
    days = sorted({p.day for p in curve})
    per_day = {d: 0 for d in days}
    for p in curve:
        per_day[p.day] += p.valid
    fig = Figure(figsize=(6.3, 2.2))
    ax = fig.subplots()
    ax.bar([d[5:] for d in days], [per_day[d] for d in days], color=ACCENT)
    ax.set_ylabel("有效答卷", fontsize=8)
    ax.tick_params(labelsize=7)
    return _svg(fig)


def regions_chart(rows: Sequence[RegionIndex]) -> str:
    shown = [r for r in rows if r.weighted is not None and r.weighted.defined][:40][::-1]
    fig = Figure(figsize=(6.3, 0.8 + 0.22 * max(len(shown), 1)))
    ax = fig.subplots()
    values = [r.weighted.value for r in shown if r.weighted]
    low = [r.weighted.low for r in shown if r.weighted]
    high = [r.weighted.high for r in shown if r.weighted]
    below, above = error_bars(low, values, high)
    ax.barh([r.name for r in shown], values, xerr=[below, above], color=ACCENT, capsize=2)
    ax.set_xlim(0, 100)
    ax.tick_params(labelsize=7)
    return _svg(fig)
