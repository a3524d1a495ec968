"""The store in process, on chDB (ClickHouse's engine as a library) with data on disk."""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from storage import sql
from storage.base import MAX_QUERY_SIZE, SqlStore

if TYPE_CHECKING:
    import pyarrow as pa

DEFAULT_DATABASE = "survey"
# chDB, like clickhouse-local, reads ./config.xml from the working directory unless told which
# config to use; a server's config.xml there would break or silently change the store.
CONFIG_NAME = "survey-chdb-config.xml"
EMPTY_CONFIG = "<clickhouse></clickhouse>\n"


def _import_chdb_session() -> Any:
    """chdb.session.Session. Importing chDB starts an engine in the working directory, which
    reads a config.xml found there; so when there is one, the import runs from an empty
    directory (the working directory is process-wide, hence only when needed)."""
    if not any(Path(name).exists() for name in ("config.xml", "config.yaml", "config.yml")):
        return _without_pyarrow(lambda: importlib.import_module("chdb.session").Session)
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as neutral:
        os.chdir(neutral)
        try:
            return _without_pyarrow(lambda: importlib.import_module("chdb.session").Session)
        finally:
            os.chdir(cwd)


def _without_pyarrow(load: Any) -> Any:
    """`load()` with pyarrow kept out of chDB's import: chDB imports it (and numpy) up front
    for the Arrow stream alone, ~0.15 s of every `serve` start that only exports use
    (issue 20). `_arrow_stream_ready` hands it over on the first stream."""
    if "pyarrow" in sys.modules:
        return load()
    sys.modules["pyarrow"] = None  # type: ignore[assignment]  # `import pyarrow` fails at once
    try:
        return load()
    finally:
        del sys.modules["pyarrow"]


def _arrow_stream_ready() -> None:
    """chDB's result streams read Arrow through their module's `pa`: pyarrow, if the import
    above left it out."""
    state: Any = importlib.import_module("chdb.state.sqlitelike")
    if getattr(state, "pa", None) is None:
        state.pa = importlib.import_module("pyarrow")


_Session: Any = _import_chdb_session()  # chDB ships py.typed but leaves its API unannotated


class ChdbStore(SqlStore):
    """chDB keeps one data directory per process: every ChdbStore in a process must use the
    same path (each with its own session), and a different path can be opened only after all
    stores on the first one are closed."""

    def __init__(self, path: str | Path, database: str = DEFAULT_DATABASE) -> None:
        super().__init__()
        self.path = Path(path)
        if "?" in str(self.path):
            raise ValueError(f"a chDB data directory cannot contain '?': {self.path}")
        self.database = sql.identifier(database)
        self.path.mkdir(parents=True, exist_ok=True)
        config = self.path / CONFIG_NAME
        if not config.exists():
            config.write_text(EMPTY_CONFIG, encoding="utf-8")
        self._session = self._open_session()
        self._session.query(f"CREATE DATABASE IF NOT EXISTS {self.database}")
        self._session.query(f"USE {self.database}")

    def _open_session(self) -> Any:
        try:
            session = _Session(f"{self.path}?config-file={self.path / CONFIG_NAME}")
        except RuntimeError as exc:
            raise RuntimeError(f"cannot open chDB data directory {self.path}: {exc}") from exc
        # Session state (settings, current database) lasts for the session's life.
        session.query(f"SET max_query_size = {MAX_QUERY_SIZE}")
        return session

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

    def _stream_arrow(self, query: str, block_rows: int) -> Iterator[pa.RecordBatch]:
        _arrow_stream_ready()
        # A session of its own: any other query on a session ends the stream open on it.
        session = self._open_session()
        stream: Any = None
        try:
            session.query(f"USE {self.database}")
            # Uncompressed: the batches stay in this process, and lz4 on them cost ~40 % of an
            # export's time (benchmarks/analysis.md).
            stream = session.send_query(
                f"{query} SETTINGS max_block_size = {int(block_rows)},"
                " output_format_arrow_compression_method = 'none'", "Arrow"
            )
            yield from stream.record_batch(rows_per_batch=int(block_rows))
        finally:
            if stream is not None:
                stream.close()
            session.close()

    def _close(self) -> None:
        self._session.close()
