"""The escaping function, the query texts and the migration files, without a database."""

from __future__ import annotations

import datetime as dt
import enum
from pathlib import Path

import pytest

from storage import count_tables, migrations, open_store, sql, standing


class Level(enum.IntEnum):
    HIGH = 7


class Code(enum.StrEnum):
    TOO_FAST = "too_fast"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "NULL"),
        (True, "1"),
        (False, "0"),
        (0, "0"),
        (-(2**63), "-9223372036854775808"),
        (2**64 - 1, "18446744073709551615"),
        (Level.HIGH, "7"),
        (1.5, "1.5"),
        (-0.0, "-0.0"),
        (1e300, "1e+300"),
        ("plain", "'plain'"),
        ("it's", "'it\\'s'"),
        ("a\\b", "'a\\\\b'"),
        ("\\'", "'\\\\\\''"),
        ("nul\0", "'nul\\0'"),
        ("新\n行", "'新\n行'"),
        (Code.TOO_FAST, "'too_fast'"),
        (dt.datetime(2023, 9, 14, 10, 1, 2, 900_000, tzinfo=dt.timezone(dt.timedelta(hours=8))),
         "1694656862"),
        (dt.datetime(2023, 9, 14, 2, 1, 2), "1694656862"),
        (dt.date(2023, 9, 14), "'2023-09-14'"),
        ([], "[]"),
        (["a", "b'"], "['a', 'b\\'']"),
        (("a",), "tuple('a')"),
        (("a", 1, None), "('a', 1, NULL)"),
        ([("c", "s"), ("c", "t")], "[('c', 's'), ('c', 't')]"),
    ],
)
def test_literal_renders_each_kind_of_value(value: object, text: str) -> None:
    assert sql.literal(value) == text


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (2**64, ValueError),
        (-(2**63) - 1, ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        (5e-324, ValueError),
        ("lone \ud800 surrogate", ValueError),
        ((), ValueError),
        (dt.datetime(1969, 12, 31, 23, 59, 59, tzinfo=dt.UTC), ValueError),
        (dt.datetime(2106, 2, 8, tzinfo=dt.UTC), ValueError),
        (b"bytes", TypeError),
        ({"a": 1}, TypeError),
        ({"a"}, TypeError),
        (object(), TypeError),
    ],
)
def test_literal_refuses_what_it_cannot_render_exactly(value: object, error: type) -> None:
    with pytest.raises(error):
        sql.literal(value)


def test_a_quoted_string_cannot_end_early() -> None:
    # Whatever the input, the literal is one quoted token: every quote inside is escaped.
    for text in ["'", "\\'", "\\\\'", "'); DROP TABLE submissions; --", "\\"]:
        body = sql.literal(text)[1:-1]
        i = 0
        while i < len(body):
            if body[i] == "\\":
                i += 2
                continue
            assert body[i] != "'", text
            i += 1
        assert i == len(body), "a trailing lone backslash would escape the closing quote"


def test_identifiers_are_checked_not_quoted() -> None:
    assert sql.identifier("survey_test1") == "survey_test1"
    for bad in ["", "1db", "a-b", "a b", "db; DROP", "`x`", "é"]:
        with pytest.raises(ValueError):
            sql.identifier(bad)


def test_in_list_is_a_parenthesised_list_and_never_empty() -> None:
    assert sql.in_list(["a"]) == "('a')"
    assert sql.in_list([("c", "s"), ("c", "t")]) == "(('c', 's'), ('c', 't'))"
    with pytest.raises(ValueError):
        sql.in_list([])


def test_every_query_text_escapes_its_values() -> None:
    hostile = "x'); DROP TABLE submissions; --"
    escaped = sql.literal(hostile)
    texts = [
        standing.sheets_sql(hostile, conflicts=True),
        standing.corrections_sql(hostile, ("unit", "day")),
        count_tables.UNIT_COUNTS.hash_sql(hostile),
        sql.submission_status_sql(hostile, hostile),
        sql.judge_memory_page_sql((hostile, hostile, hostile), 10),
        sql.judged_rows_sql(hostile, hostile),
        sql.existing_keys_sql([(hostile, hostile, hostile)]),
    ]
    for text in texts:
        assert hostile not in text.replace(escaped, "")
        assert escaped in text


def test_split_statements_respects_quotes_and_comments() -> None:
    text = """
    -- a comment; with a semicolon
    CREATE TABLE a (s String DEFAULT ';') ENGINE = Memory;
    /* block; comment */ SELECT 'it\\'s; fine', "q;x", `b;c`;
    ;;
    SELECT 2 -- trailing
    """
    assert migrations.split_statements(text) == [
        "CREATE TABLE a (s String DEFAULT ';') ENGINE = Memory",
        "SELECT 'it\\'s; fine', \"q;x\", `b;c`",
        "SELECT 2",
    ]


def test_migration_files_are_numbered_uniquely_and_hold_only_ddl() -> None:
    loaded = migrations.load()
    assert [m.name[:4] for m in loaded] == [f"{n:04d}" for n in range(1, len(loaded) + 1)]
    for migration in loaded:
        for statement in migration.statements:
            head = statement.split(None, 2)[:2]
            assert head[0] in ("CREATE", "ALTER", "DROP", "INSERT", "RENAME", "TRUNCATE"), statement
            if head[0] == "INSERT":  # inline VALUES would hang an 18.16 server
                assert " VALUES" not in statement.upper(), migration.name


def test_a_malformed_migration_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_b.sql").write_text("SELECT 1;")
    with pytest.raises(migrations.MigrationError, match="0001"):
        migrations.load(tmp_path)
    (tmp_path / "0001_b.sql").unlink()
    (tmp_path / "2-bad.sql").write_text("SELECT 1;")
    with pytest.raises(migrations.MigrationError, match="NNNN"):
        migrations.load(tmp_path)


@pytest.mark.parametrize("url", ["postgres://x/y", "clickhouse", "", "chdb://"])
def test_an_unknown_or_incomplete_store_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError):
        open_store(url)


def test_insert_values_sql_puts_every_value_through_literal() -> None:
    text = sql.insert_values_sql("t", ("a", "b"), [("x'", None), ("y", [1, 2])])
    assert text == "INSERT INTO t (a, b) VALUES ('x\\'',NULL),('y',[1, 2])"
