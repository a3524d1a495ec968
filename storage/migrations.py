"""Numbered SQL migrations (storage/migrations/NNNN_name.sql), applied in order and recorded.

Each file holds statements separated by `;`. They must be DDL or INSERT ... SELECT: an INSERT
with inline VALUES cannot be sent to ClickHouse 18.16 over the native protocol (the server waits
for data blocks instead of reading the query's own), so the record of an applied migration goes
in through the adapter's row insert instead.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.sql import epoch_seconds

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
TABLE = "schema_migrations"
CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (name String, applied_at DateTime('UTC'))"
    " ENGINE = MergeTree() ORDER BY name"
)
_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql\Z")

Execute = Callable[[str], Sequence[Sequence[Any]]]
Insert = Callable[[str, Sequence[str], Sequence[tuple[Any, ...]]], None]


@dataclass(frozen=True)
class Migration:
    name: str
    statements: tuple[str, ...]


class MigrationError(RuntimeError):
    """A migration file is malformed, or a statement in it failed (named in the message)."""


def load(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration file, in number order; a bad name or a reused number is an error."""
    migrations: list[Migration] = []
    seen: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: migration files are named NNNN_lower_case_name.sql")
        number = match.group(1)
        if number in seen:
            raise MigrationError(f"{path}: number {number} is also used by {seen[number]}")
        seen[number] = path.name
        statements = tuple(split_statements(path.read_text(encoding="utf-8")))
        if not statements:
            raise MigrationError(f"{path}: no statements")
        migrations.append(Migration(path.stem, statements))
    return migrations


def split_statements(text: str) -> list[str]:
    """Split on `;` outside quotes and comments; drop comments and empty statements."""
    statements: list[str] = []
    current: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"`":
            end = i + 1
            while end < n and text[end] != ch:
                end += 2 if text[end] == "\\" else 1
            current.append(text[i : end + 1])
            i = end + 1
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise MigrationError("unterminated /* comment")
            i = end + 2
        elif ch == ";":
            statements.append("".join(current))
            current = []
            i += 1
        else:
            current.append(ch)
            i += 1
    statements.append("".join(current))
    return [s.strip() for s in statements if s.strip()]


def applied(execute: Execute) -> set[str]:
    execute(CREATE_TABLE)
    return {str(row[0]) for row in execute(f"SELECT DISTINCT name FROM {TABLE}")}


def apply(execute: Execute, insert: Insert, migrations: Sequence[Migration]) -> list[str]:
    """Apply the migrations not yet recorded, in order; returns the names applied now.

    A migration is recorded only after all its statements succeeded; its DDL uses IF NOT EXISTS
    so a migration that failed half-way can simply be run again.
    """
    done = applied(execute)
    now_applied: list[str] = []
    for migration in migrations:
        if migration.name in done:
            continue
        for number, statement in enumerate(migration.statements, start=1):
            try:
                execute(statement)
            except Exception as exc:
                raise MigrationError(
                    f"migration {migration.name}, statement {number}: {exc}"
                ) from exc
        now = epoch_seconds(dt.datetime.now(dt.UTC))
        insert(TABLE, ("name", "applied_at"), [(migration.name, now)])
        now_applied.append(migration.name)
    return now_applied
