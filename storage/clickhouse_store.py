"""The store on a ClickHouse server, through clickhouse-driver's native protocol."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from clickhouse_driver import Client

from storage import sql
from storage.base import MAX_QUERY_SIZE, SqlStore

if TYPE_CHECKING:
    import pyarrow as pa

DEFAULT_PORT = 9000
DEFAULT_DATABASE = "survey"


class ClickHouseStore(SqlStore):
    csv_text = False  # see SqlStore.csv_text

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        database: str = DEFAULT_DATABASE,
        user: str = "default",
        password: str = "",
        connect_timeout: float = 10.0,
        settings: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.database = sql.identifier(database)
        common: dict[str, Any] = {
            "host": host, "port": port, "user": user, "password": password,
            "connect_timeout": connect_timeout,
            "settings": {"max_query_size": MAX_QUERY_SIZE, **(settings or {})},
        }
        # The database must exist before a connection can name it as its default.
        bootstrap = Client(database="default", **common)
        try:
            bootstrap.execute(f"CREATE DATABASE IF NOT EXISTS {self.database}")
        finally:
            bootstrap.disconnect()
        self._common = common
        self._client = Client(database=self.database, **common)

    @classmethod
    def from_url(cls, url: str) -> ClickHouseStore:
        """clickhouse://[user[:password]@]host[:port][/database][?setting=value&...]

        Query parameters are ClickHouse settings for every query, e.g. insert_distributed_sync=1
        for a store whose tables are Distributed (storage/cluster.py)."""
        parts = urlsplit(url)
        if parts.scheme != "clickhouse":
            raise ValueError(f"not a clickhouse:// URL: {url!r}")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or DEFAULT_PORT,
            database=parts.path.strip("/") or DEFAULT_DATABASE,
            user=unquote(parts.username) if parts.username else "default",
            password=unquote(parts.password) if parts.password else "",
            settings=dict(parse_qsl(parts.query, strict_parsing=True)) if parts.query else None,
        )

    def _execute(self, query: str) -> Sequence[Sequence[Any]]:
        result: Sequence[Sequence[Any]] = self._client.execute(query)
        return result

    def _existing_keys(self, keys: list[sql.Key]) -> set[sql.Key]:
        # The batch's ids travel as an external table (native, columnar) instead of a
        # 5,000-item IN list the server parses as SQL text: ~24 ms -> ~5 ms per batch.
        # External tables are sent on to the shards when the table is Distributed.
        if not keys:
            return set()
        campaigns = sorted({k[0] for k in keys})
        rows = self._client.execute(
            "SELECT campaign, submission_id, fingerprint FROM submissions"
            f" WHERE campaign IN {sql.in_list(campaigns)}"
            " AND submission_id IN (SELECT id FROM batch_ids)",
            external_tables=[{
                "name": "batch_ids",
                "structure": [("id", "String")],
                "data": [(sid,) for sid in {k[1] for k in keys}],  # tuples: no dict per id
            }],
        )
        return {(str(r[0]), str(r[1]), str(r[2])) for r in rows}

    def _insert(self, table: str, columns: Sequence[str], rows: Sequence[sql.Row]) -> None:
        # Native blocks: the rows never become SQL text.
        self._client.execute(sql.insert_sql(table, columns), list(rows))

    def _insert_columns(
        self, table: str, columns: Sequence[str], data: Sequence[Sequence[Any]]
    ) -> None:
        # Columns as they are: the driver writes a native block column by column, so rows
        # would only be transposed back (~2 ms per 5,000 verdicts).
        self._client.execute(sql.insert_sql(table, columns), data, columnar=True)

    def _stream_arrow(self, query: str, block_rows: int) -> Iterator[pa.RecordBatch]:
        # A connection of its own: the store's client stays free for other calls. The server
        # sends blocks as the reader takes them (TCP flow control), so a slow reader holds the
        # query back instead of filling memory.
        # use_numpy: the driver reads columns into NumPy and Arrow buffers; without it every
        # value becomes a Python object first (~5 µs a value, most of an export's time).
        common = {**self._common, "settings": {**self._common["settings"], "use_numpy": True}}
        client = Client(database=self.database, **common)
        try:
            reader = client.query_arrow_stream(
                query, settings={"max_block_size": int(block_rows)}, field_metadata=False
            )
            yield from reader
        finally:
            client.disconnect()

    def _close(self) -> None:
        self._client.disconnect()
