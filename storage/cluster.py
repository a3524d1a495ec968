"""ClickHouse cluster DDL: the numbered migrations' tables as shard-local tables (replicated where
a keeper exists) behind Distributed tables of the same names, so the store's SQL runs unchanged.

What it renders from each migration statement (storage/migrations/ stays the one source):

- `CREATE TABLE t (...) ENGINE = XMergeTree(...)` -> `t_local` with the same columns and keys,
  engine `ReplicatedXMergeTree('/clickhouse/tables/{shard}/<db>/t_local', '{replica}', ...)` when
  `replicated` (needs ZooKeeper and the `{shard}`/`{replica}` macros in each server's config),
  else the engine as it is; plus `t` = `Distributed(<cluster>, <db>, t_local, <sharding key>)`.
- `CREATE MATERIALIZED VIEW v TO t AS SELECT ... FROM s` -> the same view on every shard, from
  `s_local` to `t_local`: each shard counts its own verdicts, and the Distributed `t` sums the
  shards when read (`sum() ... GROUP BY`, which is what every counts query already does).
- `INSERT INTO t ... SELECT ... FROM s` (a backfill) -> the same on every shard, local to local;
  every table a view or a backfill reads, subqueries included, is read shard-locally.
- `DROP TABLE|VIEW IF EXISTS` and `ALTER TABLE t ADD|DROP|MODIFY COLUMN` -> on the local and the
  Distributed table alike. Anything else is refused by name (ClusterDdlError), never guessed.

Sharding key: `sipHash64(submission_id)` for the verdicts (and review decisions; findings by
finding id, any other ReplacingMergeTree by its ORDER BY key: SHARDING_KEYS). Idempotence is
per shard: the store's insert skips a
(campaign, submission_id, fingerprint) that is stored already, and ReplacingMergeTree collapses a
key only among rows of the same table, i.e. the same shard. Every verdict of one submission id
must therefore land on the same shard, whichever writer sends it and however often (a
redelivery, a replay): a deterministic hash of the id does that; `rand()` or a key with the
receive time or the worker in it would put a redelivered verdict on another shard and count it
twice. The hash of the id also spreads the load evenly (client-made UUIDs), where sharding by
campaign, unit or province would put a whole campaign or a big province on one node.

Writers must use `insert_distributed_sync=1` (e.g. `clickhouse://host:9000/survey?
insert_distributed_sync=1`): the default asynchronous Distributed insert returns before the rows
reach their shard, so the store's "already stored?" lookup could miss rows it just wrote, and a
redelivered batch would be inserted (and counted) twice.

`python -m storage.cluster --cluster C --database D [--replicated] [--on-cluster] [URL ...]`
prints the statements, or applies them to every node URL given (each node needs the local tables
and, to serve reads and writes, the Distributed ones too) and records each migration in that
node's schema_migrations: `survey-ingest migrate` then only creates the topics. Run it again after
a new migration is added; an INSERT ... SELECT backfill runs on every node, local to local.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote, urlsplit

from storage import migrations, sql

LOCAL_SUFFIX = "_local"
# Where a writer's rows go. A ReplacingMergeTree collapses versions of a key only within one
# shard, so every version of a key must always go to the same shard: a hash of (part of) its
# ORDER BY key. Verdicts and review decisions go by submission id (one id's rows together);
# findings by finding id (its revisions together). Any other ReplacingMergeTree table gets a hash
# of its whole ORDER BY key. Summing tables are fed by the views on each shard and only read
# through their Distributed table, so their key is never used (rand()). link_opens (0012) is
# written directly, but its rows only add up, so any shard will do (rand() too).
SHARDING_KEYS = {
    "submissions": "sipHash64(submission_id)",
    "review_overrides": "sipHash64(submission_id)",
    "review_sheets": "sipHash64(submission_id)",
    "findings": "sipHash64(finding_id)",
}
READ_ONLY_KEY = "rand()"
_ORDER_BY = re.compile(r"\bORDER BY\s+(?:\((?P<tuple>[^)]*)\)|(?P<one>\w+))")
ZK_PATH = "/clickhouse/tables/{shard}/%(database)s/%(table)s"

_CREATE_TABLE = re.compile(
    r"\ACREATE TABLE IF NOT EXISTS (?P<name>\w+)\s*(?P<columns>\(.*\))\s*"
    r"ENGINE\s*=\s*(?P<engine>\w*MergeTree)\((?P<args>[^)]*)\)(?P<rest>.*)\Z", re.S)
_CREATE_VIEW = re.compile(
    r"\ACREATE MATERIALIZED VIEW IF NOT EXISTS (?P<name>\w+) TO (?P<target>\w+) AS"
    r"(?P<select>.*)\Z", re.S)
_MATERIALIZED = re.compile(r"\s+MATERIALIZED\s+")
_INSERT_SELECT = re.compile(r"\AINSERT INTO (?P<target>\w+)(?P<select>\s*\([^)]*\)\s*SELECT\b.*)\Z",
                            re.S)
_DROP = re.compile(r"\ADROP (?P<kind>TABLE|VIEW) IF EXISTS (?P<name>\w+)\s*\Z", re.S)
_ALTER = re.compile(
    r"\AALTER TABLE (?P<name>\w+)(?P<rest>\s+(?:ADD|DROP|MODIFY|COMMENT) COLUMN\b.*)\Z", re.S)
_ADD_COLUMN = re.compile(r"\AALTER TABLE \S+ (ON CLUSTER \S+ )?ADD COLUMN ", re.S)
_TRUNCATE = re.compile(r"\ATRUNCATE TABLE (?P<name>\w+)\s*\Z", re.S)
_READ = re.compile(r"\b(?P<verb>FROM|JOIN)(?P<space>\s+)(?P<table>\w+)\b")


@dataclass(frozen=True)
class ClusterLayout:
    cluster: str  # a <remote_servers> cluster known to every node
    database: str
    replicated: bool = False  # Replicated*MergeTree: needs ZooKeeper and {shard}/{replica} macros
    on_cluster: bool = False  # `ON CLUSTER`: one node runs it everywhere (distributed DDL: keeper)

    def __post_init__(self) -> None:
        sql.identifier(self.cluster)
        sql.identifier(self.database)


class ClusterDdlError(ValueError):
    """A migration statement has a shape this renderer does not know (named in the message)."""


def migrations_for(
    layout: ClusterLayout, migration_list: Sequence[migrations.Migration] | None = None,
) -> list[migrations.Migration]:
    """Every migration in its cluster form, under its own name (so it is recorded as applied)."""
    chosen = migration_list if migration_list is not None else migrations.load()
    tables = frozenset(match["name"] for m in chosen for statement in m.statements
                       if (match := _CREATE_TABLE.match(statement)) is not None)
    return [
        migrations.Migration(m.name, tuple(
            rendered for statement in m.statements
            for rendered in render(layout, statement, tables)))
        for m in chosen
    ]


def statements(layout: ClusterLayout, migration_list: Sequence[migrations.Migration] | None = None,
               ) -> list[str]:
    """The cluster DDL for every migration, in order; local tables before what reads them."""
    out: list[str] = [f"CREATE DATABASE IF NOT EXISTS {layout.database}{_on(layout)}"]
    for migration in migrations_for(layout, migration_list):
        out.extend(migration.statements)
    return out


def render(layout: ClusterLayout, statement: str, tables: frozenset[str]) -> list[str]:
    """One migration statement's cluster form; `tables` are the names that get a local table."""
    db, on = layout.database, _on(layout)
    table = _CREATE_TABLE.match(statement)
    if table is not None:
        name, engine, args = table["name"], table["engine"], table["args"].strip()
        local = name + LOCAL_SUFFIX
        if layout.replicated:
            path = ZK_PATH % {"database": db, "table": local}
            args = ", ".join(a for a in (f"'{path}'", "'{replica}'", args) if a)
            engine = "Replicated" + engine
        key = SHARDING_KEYS.get(name) or _dedup_key(engine, table["rest"])
        return [
            f"CREATE TABLE IF NOT EXISTS {db}.{local}{on} {table['columns']}"
            f" ENGINE = {engine}({args}){table['rest']}",
            # The same columns, a MATERIALIZED one as an ALIAS of the same expression: 18.16's
            # Distributed insert sends materialized columns on to the shard, which refuses them.
            f"CREATE TABLE IF NOT EXISTS {db}.{name}{on}"
            f" {_MATERIALIZED.sub(' ALIAS ', table['columns'])}"
            f" ENGINE = Distributed({layout.cluster}, {db}, {local}, {key})",
        ]

    def local_reads(select: str) -> str:
        # Every table read (FROM, JOIN, subqueries too) is this shard's own: a view or a
        # backfill runs on each shard over its share, never through the Distributed tables.
        return _READ.sub(
            lambda m: (f"{m['verb']}{m['space']}{db}.{m['table']}{LOCAL_SUFFIX}"
                       if m["table"] in tables else m[0]), select)

    view = _CREATE_VIEW.match(statement)
    if view is not None:
        return [
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{view['name']}{on}"
            f" TO {db}.{view['target']}{LOCAL_SUFFIX} AS{local_reads(view['select'])}"
        ]
    drop = _DROP.match(statement)
    if drop is not None:
        # A view (a recreated counts view, say) has one name; a table has its local form too.
        name = drop["name"]
        names = [name, name + LOCAL_SUFFIX] if name in tables else [name]
        return [f"DROP {drop['kind']} IF EXISTS {db}.{n}{on}" for n in names]
    alter = _ALTER.match(statement)
    if alter is not None and alter["name"] in tables:
        # Columns change on the shard tables and on the Distributed table over them alike.
        name = alter["name"]
        return [f"ALTER TABLE {db}.{n}{on}{alter['rest']}" for n in (name + LOCAL_SUFFIX, name)]
    truncate = _TRUNCATE.match(statement)
    if truncate is not None and truncate["name"] in tables:
        # A rebuild empties each shard's own rows (the backfill after it refills them).
        return [f"TRUNCATE TABLE {db}.{truncate['name']}{LOCAL_SUFFIX}{on}"]
    backfill = _INSERT_SELECT.match(statement)
    if backfill is not None:
        # A backfill of what was stored before a view existed: each shard fills its own.
        return [f"INSERT INTO {db}.{backfill['target']}{LOCAL_SUFFIX}"
                f"{local_reads(backfill['select'])}"]
    raise ClusterDdlError(
        f"no cluster form for: {statement[:120]!r}; teach storage/cluster.py this statement")


def _dedup_key(engine: str, rest: str) -> str:
    if not engine.endswith("ReplacingMergeTree"):
        return READ_ONLY_KEY
    order = _ORDER_BY.search(rest)
    if order is None:
        raise ClusterDdlError(f"a ReplacingMergeTree without ORDER BY: {rest[:120]!r}")
    return f"sipHash64({order['tuple'] or order['one']})"


def _on(layout: ClusterLayout) -> str:
    return f" ON CLUSTER {layout.cluster}" if layout.on_cluster else ""


def apply(layout: ClusterLayout, node_urls: Sequence[str]) -> dict[str, list[str]]:
    """Apply the cluster form of every migration not yet recorded on each node, and record it
    there (schema_migrations is per node), so `survey-ingest migrate` later finds them applied.
    Runs on every node, never `ON CLUSTER`; returns the migrations applied now, per node."""
    from clickhouse_driver import Client

    layout = replace(layout, on_cluster=False)
    done: dict[str, list[str]] = {}
    nodes: list[tuple[str, Any, Any]] = []  # (url, execute, insert), one client per node
    clients: list[Client] = []
    try:
        for url in node_urls:
            parts = urlsplit(url)
            if parts.scheme != "clickhouse":
                raise ValueError(f"not a clickhouse:// URL: {url!r}")
            common: dict[str, Any] = {
                "host": parts.hostname or "127.0.0.1", "port": parts.port or 9000,
                "user": unquote(parts.username) if parts.username else "default",
                "password": unquote(parts.password) if parts.password else "",
            }
            bootstrap = Client(database="default", **common)
            try:
                bootstrap.execute(f"CREATE DATABASE IF NOT EXISTS {layout.database}")
            finally:
                bootstrap.disconnect()
            client = Client(database=layout.database, **common)
            clients.append(client)

            def execute(query: str, client: Client = client) -> Sequence[Sequence[Any]]:
                try:
                    result: Sequence[Sequence[Any]] = client.execute(query)
                except Exception as exc:
                    # A replicated ALTER reaches every replica of the shard through the keeper:
                    # the peer that runs the same migration next finds the column already there.
                    if _ADD_COLUMN.match(query) and "already exists" in str(exc):
                        return []
                    raise
                return result

            def insert(table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]],
                       client: Client = client) -> None:
                client.execute(sql.insert_sql(table, columns), list(rows))

            # A database migrated for one server already has plain tables under these names
            # and its migrations recorded: applying would silently change nothing.
            plain = execute(
                "SELECT name, engine FROM system.tables WHERE database = currentDatabase()"
                " AND name IN ('submissions', 'unit_counts') AND engine != 'Distributed'")
            if plain:
                raise ClusterDdlError(
                    f"{url}: {layout.database} has single-server tables "
                    f"({', '.join(f'{n} {e}' for n, e in plain)}); use a fresh database")
            nodes.append((url, execute, insert))
            done[url] = []
        # In step: each migration on every node before the next one anywhere. A replicated
        # table's structure lives in the keeper, so a replica created from an early migration
        # after its peer ran a later ALTER would be refused ("too different").
        for migration in migrations_for(layout):
            for url, execute, insert in nodes:
                done[url].extend(migrations.apply(execute, insert, [migration]))
    finally:
        for client in clients:
            client.disconnect()
    return done


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m storage.cluster",
                                description=(__doc__ or "").split("\n", 1)[0])
    p.add_argument("--cluster", required=True, help="cluster name in <remote_servers>")
    p.add_argument("--database", required=True)
    p.add_argument("--replicated", action="store_true", help="Replicated*MergeTree (keeper)")
    p.add_argument("--on-cluster", dest="on_cluster", action="store_true",
                   help="ON CLUSTER: distributed DDL from one node (keeper)")
    p.add_argument("nodes", nargs="*", metavar="URL",
                   help="clickhouse://host:port nodes to apply to (none: print the DDL)")
    args = p.parse_args(argv)
    layout = ClusterLayout(args.cluster, args.database, args.replicated, args.on_cluster)
    if not args.nodes:
        print(";\n\n".join(statements(layout)) + ";")
        return 0
    for url, names in apply(layout, args.nodes).items():
        print(f"{url}: applied {', '.join(names) or 'nothing (all recorded)'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
