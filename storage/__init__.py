"""The Store port's adapters: ClickHouse server (clickhouse-driver) and chDB, on the same SQL."""

from __future__ import annotations

from storage.base import SqlStore


def open_store(url: str) -> SqlStore:
    """`clickhouse://[user[:password]@]host[:port]/database` -> ClickHouse server;
    `chdb:///absolute/path` or `chdb://relative/path` (optionally `?database=name`) -> chDB.

    Each adapter is imported only when asked for: importing chDB starts its engine.
    """
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == "clickhouse":
        from storage.clickhouse_store import ClickHouseStore

        return ClickHouseStore.from_url(url)
    if scheme == "chdb":
        from storage.chdb_store import ChdbStore

        return ChdbStore.from_url(url)
    raise ValueError(f"unknown store URL {url!r}: use clickhouse://host:port/db or chdb:///path")


__all__ = ["SqlStore", "open_store"]
