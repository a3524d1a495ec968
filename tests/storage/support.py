"""Helpers shared by the storage tests and their fixtures."""

from __future__ import annotations

from storage import SqlStore


def drop(store: SqlStore) -> None:
    """Drops the store's database (tests create one per test or module)."""
    store._execute(f"DROP DATABASE IF EXISTS {store.database}")
