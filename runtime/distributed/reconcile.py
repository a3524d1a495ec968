"""`survey-ingest reconcile` on the distributed stack: the registry from its topic, the store on
the ClickHouse server (runtime/reconcile.py does the checking)."""

from __future__ import annotations

from core.progress import SILENT, Progress
from runtime.reconcile import reconcile as check
from runtime.registry import from_topic
from schemas.settings import Settings
from storage import open_store


def reconcile(settings: Settings, *, repair: bool = False, progress: Progress = SILENT) -> int:
    registry = from_topic(settings)
    store = open_store(settings.clickhouse_url)
    try:
        return check(store, registry, repair_them=repair, progress=progress)
    finally:
        store.close()
