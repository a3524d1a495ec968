"""The one shape of a benchmark entry in latest.json (see benchmarks/run.py), and the entry of a
benchmark that could not be measured."""

from __future__ import annotations

from typing import Any

from benchmarks import support as s


def entry(
    name: str,
    metric: str,
    unit: str,
    figure: float | None,
    baseline: float | None,
    baseline_name: str,
    ratio_meaning: str,
    floor: str | None = None,
    meets: bool | None = None,
    details: dict[str, Any] | None = None,
    ratio: float | None = None,
) -> dict[str, Any]:
    if ratio is None and figure is not None and baseline:
        ratio = s.ratio(figure, baseline)
    return {
        "name": name,
        "metric": metric,
        "unit": unit,
        "figure": figure,
        "baseline": baseline,
        "baseline_name": baseline_name,
        "ratio": ratio,
        "ratio_meaning": ratio_meaning,
        "floor": floor,
        "meets_floor": meets,
        "details": details or {},
    }


def failed(bench: str, report: dict[str, Any], key: str = "") -> dict[str, Any] | None:
    part = report.get(key, {}) if key else report
    why = part.get("failed") or part.get("unavailable")
    if why:
        return entry(
            f"{bench}{'_' + key if key else ''}",
            "not measured",
            "",
            None,
            None,
            "",
            "",
            details={"why": why},
        )
    return None
