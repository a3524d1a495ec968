"""`survey-ingest reconcile`: the live counts against the stored verdicts, per campaign and unit.

The live counts are ClickHouse's counting view (what leaderboards show, kept up by materialized
views on insert); the reference is the same figures recomputed from the deduplicated verdicts.
They agree as long as every insert was idempotent; a difference is printed as one JSON line.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

from core.counting import Count
from runtime.registry import from_topic
from schemas.settings import Settings
from storage import open_store


def reconcile(settings: Settings) -> int:
    registry = from_topic(settings)
    store = open_store(settings.clickhouse_url)
    differences = 0
    try:
        for campaign in sorted(registry.campaigns):
            view, exact = store.unit_counts(campaign), store.exact_unit_counts(campaign)
            for unit in sorted(set(view) | set(exact)):
                live, stored = view.get(unit, Count()), exact.get(unit, Count())
                if live != stored:
                    differences += 1
                    print(json.dumps({"campaign": campaign, "unit": unit, "view": asdict(live),
                                      "exact": asdict(stored)}), flush=True)
    finally:
        store.close()
    print(f"reconcile: {len(registry.campaigns)} campaigns, {differences} differences",
          file=sys.stderr)
    return 1 if differences else 0
