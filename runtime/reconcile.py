"""`survey-ingest reconcile`, for both runtimes: every count against the verdicts and the review
decisions, printed per table and scope, exit 1 on any difference; `--repair` rebuilds.

Three checks, each a table of its own in the output:
- the count tables (storage/count_tables.py: unit_counts, link_hour_counts, answer_counts,
  device_firsts) against the same projections recomputed from the stored verdicts;
- review_sheets against the registry's decisions: the rows every decision must have written
  (core.review.overrides_for over the stored first verdicts it names), and no others;
- the standing counts per unit (what leaderboards show: count tables plus review corrections)
  against the same figures recomputed sheet by sheet (storage/standing.sheets_sql).
Each difference is one JSON line on stdout: {"table", "campaign", "scope", "stored",
"expected"}. `repair` rebuilds the count tables from the verdicts, writes the missing review
rows and deletes the unexplained ones, then checks again. No writer may run meanwhile.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any, TextIO

from core.counting import Count
from core.progress import SILENT, Progress
from core.registry import Registry
from core.review import Override, overrides_for
from storage import SqlStore


def differences(store: SqlStore, registry: Registry,
                progress: Progress = SILENT) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    progress.stage("reconcile", 1 + len(registry.campaigns), "checks")
    for d in store.count_differences():
        key = dict(d.key)
        campaign = key.pop("campaign", "")
        out.append({"table": d.table, "campaign": campaign, "scope": key, "stored": d.stored,
                    "expected": d.expected})
    progress.advance()
    for campaign in sorted(registry.campaigns):
        missing, extra = review_differences(store, registry, campaign)
        for o in missing:
            out.append({"table": "review_sheets", "campaign": campaign,
                        "scope": {"submission_id": o.submission_id,
                                  "decision_id": o.decision_id},
                        "stored": None, "expected": o.status})
        for sid, decision_id, status in extra:
            out.append({"table": "review_sheets", "campaign": campaign,
                        "scope": {"submission_id": sid, "decision_id": decision_id},
                        "stored": status, "expected": None})
        live, exact = store.unit_counts(campaign), store.exact_unit_counts(campaign)
        for unit in sorted(set(live) | set(exact)):
            a, b = live.get(unit, Count()), exact.get(unit, Count())
            if a != b:
                out.append({"table": "standing_unit_counts", "campaign": campaign,
                            "scope": {"unit": unit}, "stored": asdict(a), "expected": asdict(b)})
        progress.advance()
    return out


def review_differences(
    store: SqlStore, registry: Registry, campaign: str
) -> tuple[list[Override], list[tuple[str, str, str]]]:
    """(review rows the decisions call for that are not stored, stored rows none calls for)."""
    decisions = [d for d in registry.reviews() if d.campaign == campaign]
    expected: dict[tuple[str, str], Override] = {}
    for decision in decisions:
        for o in overrides_for([decision], store.review_targets(decision)):
            expected[(o.submission_id, o.decision_id)] = o
    stored = store.review_rows(campaign)
    missing = [o for key, o in sorted(expected.items())
               if key not in stored or stored[key] != o.status]
    extra = [(sid, did, status) for (sid, did), status in sorted(stored.items())
             if (sid, did) not in expected or expected[(sid, did)].status != status]
    return missing, extra


def repair(store: SqlStore, registry: Registry, progress: Progress = SILENT) -> None:
    progress.stage("repair", 1 + len(registry.campaigns), "steps")
    store.rebuild_counts()
    progress.advance()
    for campaign in sorted(registry.campaigns):
        missing, extra = review_differences(store, registry, campaign)
        if extra:
            store.delete_review_rows(campaign, [(sid, did) for sid, did, _ in extra])
        store.insert_overrides(missing)
        progress.advance()


def reconcile(store: SqlStore, registry: Registry, *, repair_them: bool = False,
              out: TextIO = sys.stdout, progress: Progress = SILENT) -> int:
    found = differences(store, registry, progress)
    _print(found, out)
    if found and repair_them:
        repair(store, registry, progress)
        left = differences(store, registry, progress)
        print(f"reconcile: repaired; {len(left)} differences left", file=sys.stderr)
        _print(left, out)
        return 1 if left else 0
    print(f"reconcile: {len(registry.campaigns)} campaigns, {len(found)} differences",
          file=sys.stderr)
    return 1 if found else 0


def _print(rows: Iterable[dict[str, Any]], out: TextIO) -> None:
    for row in rows:
        print(json.dumps(row, ensure_ascii=False, sort_keys=True), file=out, flush=True)


def reconcile_data_dir(data_dir: str, *, repair: bool = False,
                       progress: Progress = SILENT) -> int:
    """The embedded equivalent: a stopped instance's registry and chDB store."""
    from pathlib import Path

    from runtime.registry import from_data_dir
    from storage import open_store

    data = Path(data_dir).resolve()
    registry = from_data_dir(data)
    store = open_store(f"chdb://{data / 'chdb'}")
    try:
        return reconcile(store, registry, repair_them=repair, progress=progress)
    finally:
        store.close()
