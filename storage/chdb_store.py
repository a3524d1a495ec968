"""The store in process, on chDB (ClickHouse's engine as a library) with data on disk."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import chdb.session

from storage import sql
from storage.base import MAX_QUERY_SIZE, SqlStore

DEFAULT_DATABASE = "survey"
_Session: Any = chdb.session.Session  # chDB ships py.typed but leaves its API unannotated


class ChdbStore(SqlStore):
    """chDB keeps one data directory per process: every ChdbStore in a process must use the
    same path (each with its own session), and a different path can be opened only after all
    stores on the first one are closed."""

    def __init__(self, path: str | Path, database: str = DEFAULT_DATABASE) -> None:
        super().__init__()
        self.path = Path(path)
        self.database = sql.identifier(database)
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            self._session = _Session(str(self.path))
        except RuntimeError as exc:
            raise RuntimeError(f"cannot open chDB data directory {self.path}: {exc}") from exc
        # Session state (settings, current database) lasts for the session's life.
        self._session.query(f"SET max_query_size = {MAX_QUERY_SIZE}")
        self._session.query(f"CREATE DATABASE IF NOT EXISTS {self.database}")
        self._session.query(f"USE {self.database}")

    @classmethod
    def from_url(cls, url: str) -> ChdbStore:
        """chdb:///absolute/path or chdb://relative/path, optionally ?database=name"""
        parts = urlsplit(url)
        if parts.scheme != "chdb":
            raise ValueError(f"not a chdb:// URL: {url!r}")
        path = parts.netloc + parts.path
        if not path:
            raise ValueError(f"chdb URL names no data directory: {url!r}")
        database = parse_qs(parts.query).get("database", [DEFAULT_DATABASE])[-1]
        return cls(path, database)

    def _execute(self, query: str) -> Sequence[Sequence[Any]]:
        data = self._session.query(query, "JSONCompact").bytes()
        if not data:
            return []
        rows: list[list[Any]] = json.loads(data)["data"]
        return rows

    def _insert(self, table: str, columns: Sequence[str], rows: Sequence[sql.Row]) -> None:
        self._session.query(sql.insert_values_sql(table, columns, rows))

    def _close(self) -> None:
        self._session.close()
