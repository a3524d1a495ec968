"""The SQL both adapters run, and the one function that turns a Python value into SQL text.

Neither the old ClickHouse server we support (18.16) nor chDB's Values parser share a way to
bind parameters, so every value that reaches a query goes through `literal`, which quotes
strings itself (backslash-escaping `\\`, `'` and NUL) and refuses anything it cannot render
exactly. No other function in this package puts a value into SQL text.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from schemas.events import SubmissionJudged

# DateTime is seconds since the epoch in a UInt32 on every ClickHouse version.
DATETIME_MIN: Final = 0
DATETIME_MAX: Final = 2**32 - 1
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def identifier(name: str) -> str:
    """A database or table name, checked rather than quoted: only plain names are accepted."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


def epoch_seconds(value: dt.datetime) -> int:
    """Whole seconds since the epoch; a naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return math.floor(value.timestamp())


def literal(value: Any) -> str:
    """The SQL text of one value, for both ClickHouse 18.16 and chDB.

    str -> quoted and escaped; int -> decimal (Int64/UInt64 range); bool -> 1/0;
    float -> repr (finite and normal only); None -> NULL; datetime -> epoch seconds (a DateTime
    column takes an integer, and comparing one with an integer compares instants);
    date -> 'YYYY-MM-DD'; list -> array; tuple -> tuple. Anything else is refused.
    """
    # Exact types first (a VALUES insert renders ~130,000 values per batch); subclasses such
    # as StrEnum or IntEnum take the slower isinstance path below.
    render = _BY_TYPE.get(type(value))
    if render is not None:
        return render(value)
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return _int(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, dt.datetime):
        return _datetime(value)
    if isinstance(value, dt.date):
        return "'" + value.isoformat() + "'"
    if isinstance(value, list):
        return _array(value)
    if isinstance(value, tuple):
        return _tuple(value)
    raise TypeError(f"no SQL literal for a value of type {type(value).__name__}")


def _string(value: str) -> str:
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate from a \udXXX JSON escape
            raise ValueError(f"string is not valid Unicode text: {exc}") from exc
    # Backslash first, so the escapes added after it are not escaped again. NUL becomes \0:
    # a raw NUL would end the query early wherever it passes through a C string.
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'").replace("\0", "\\0") + "'"


def _int(value: int) -> str:
    if not _INT_MIN <= value <= _INT_MAX:
        raise ValueError(f"integer out of the Int64/UInt64 range: {value}")
    return int.__repr__(value)  # not str(): an IntEnum subclass could render its name


def _float(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"non-finite float cannot be stored exactly: {value!r}")
    if value != 0.0 and abs(value) < sys.float_info.min:
        # 18.16's parser rejects a subnormal literal as a syntax error.
        raise ValueError(f"subnormal float has no literal every ClickHouse reads: {value!r}")
    return float.__repr__(value)


def _datetime(value: dt.datetime) -> str:
    seconds = epoch_seconds(value)
    if not DATETIME_MIN <= seconds <= DATETIME_MAX:
        raise ValueError(f"datetime outside the DateTime range: {value.isoformat()}")
    return int.__repr__(seconds)


def _array(value: list[Any]) -> str:
    return "[" + ", ".join(literal(v) for v in value) + "]"


def _tuple(value: tuple[Any, ...]) -> str:
    if not value:
        raise ValueError("an empty tuple has no SQL form")
    if len(value) == 1:
        return "tuple(" + literal(value[0]) + ")"  # (x) would be x, not a tuple
    return "(" + ", ".join(literal(v) for v in value) + ")"


_BY_TYPE: Final[dict[type, Callable[[Any], str]]] = {
    str: _string,
    int: _int,
    float: _float,
    type(None): lambda _: "NULL",
    bool: lambda v: "1" if v else "0",
    list: _array,
    tuple: _tuple,
    dt.datetime: _datetime,
}


def in_list(values: Iterable[Any]) -> str:
    """The right-hand side of IN: `(a, b, ...)`; a tuple of tuples, never an array (18.16)."""
    items = [literal(v) for v in values]
    if not items:
        raise ValueError("IN needs at least one value")
    return "(" + ", ".join(items) + ")"


# ---------------------------------------------------------------------------------------------
# The submissions table, as written.

SUBMISSION_COLUMNS: Final = (
    "submission_id",
    "campaign",
    "fingerprint",
    "source_position",
    "received_at",
    "status",
    "reasons",
    "rules_version",
    "phase",
    "link_code",
    "unit",
    "province",
    "work_region",
    "channel",
    "questionnaire_version",
    "respondent_province",
    "respondent_city",
    "age_group",
    "started_at",
    "submitted_at",
    "duration_seconds",
    "device_hash",
    "client",
    "answers_json",
    "opinion",
    "first_of_id",
    "network",
)

Row = tuple[Any, ...]
Key = tuple[str, str, str]
Key2 = tuple[str, str]  # (campaign, submission id) or (campaign, device hash)


def verdict_key(judged: SubmissionJudged) -> Key:
    """What identifies a verdict: the table's sorting key."""
    return (judged.campaign, judged.submission_id, judged.fingerprint)


def _client_time(value: dt.datetime | None) -> int | None:
    # Times the answering page sent may be anything; one that DateTime cannot hold is stored
    # as NULL rather than failing the whole batch (the verdict already used it).
    if value is None:
        return None
    seconds = epoch_seconds(value)
    return seconds if DATETIME_MIN <= seconds <= DATETIME_MAX else None


def submission_row(j: SubmissionJudged) -> Row:
    """One verdict as plain values in SUBMISSION_COLUMNS order (datetimes as epoch seconds)."""
    received = epoch_seconds(j.received_at)
    if not DATETIME_MIN <= received <= DATETIME_MAX:
        raise ValueError(f"received_at outside the DateTime range: {j.received_at.isoformat()}")
    if not math.isfinite(j.duration_seconds):
        raise ValueError(f"duration_seconds is not finite: {j.duration_seconds!r}")
    return (
        j.submission_id,
        j.campaign,
        j.fingerprint,
        j.source_position,
        received,
        j.status,
        [str(r) for r in j.reasons],
        j.rules_version,
        j.phase,
        j.link_code,
        j.unit,
        j.province,
        j.work_region,
        j.channel,
        j.questionnaire_version,
        j.respondent_province,
        j.respondent_city,
        j.age_group,
        _client_time(j.started_at),
        _client_time(j.submitted_at),
        float(j.duration_seconds),
        j.device_hash,
        j.client,
        j.answers_json,
        j.opinion,
        1 if j.first_of_id else 0,
        j.network,
    )


# field_columns reads the fields straight from each model's __dict__ (where pydantic keeps them)
# with one C-level getter per verdict: several times faster than attribute access. Row by row,
# then transposed: each verdict's fields are read while they are in the CPU cache.
_FIELDS_OF: Final = operator.itemgetter(*SUBMISSION_COLUMNS)
_AT: Final = {name: i for i, name in enumerate(SUBMISSION_COLUMNS)}


def field_columns(rows: Sequence[SubmissionJudged]) -> list[list[Any]]:
    """The fields of SUBMISSION_COLUMNS as the verdicts hold them, one list per column (what
    storable_columns takes)."""
    try:
        records = list(map(_FIELDS_OF, map(vars, rows)))
    except (TypeError, KeyError):  # not a model keeping its fields in __dict__: the public way
        records = list(map(operator.attrgetter(*SUBMISSION_COLUMNS), rows))
    if not records:
        return [[] for _ in SUBMISSION_COLUMNS]
    return [list(column) for column in zip(*records, strict=True)]


def column_keys(columns: Sequence[Sequence[Any]]) -> list[Key]:
    """verdict_key of each verdict in field_columns (or storable_columns) form."""
    return list(zip(
        columns[_AT["campaign"]], columns[_AT["submission_id"]], columns[_AT["fingerprint"]],
        strict=True,
    ))


def _epochs(values: Iterable[dt.datetime]) -> list[int]:
    """epoch_seconds of each value, without a call per aware datetime."""
    floor = math.floor
    return [floor(v.timestamp()) if v.tzinfo is not None else epoch_seconds(v) for v in values]


def _client_times(values: Iterable[dt.datetime | None]) -> list[int | None]:
    """_client_time of each value."""
    floor = math.floor
    seconds = [
        None if v is None else floor(v.timestamp()) if v.tzinfo is not None else epoch_seconds(v)
        for v in values
    ]
    return [s if s is not None and DATETIME_MIN <= s <= DATETIME_MAX else None for s in seconds]


def storable_columns(
    columns: list[list[Any]], rows: Sequence[SubmissionJudged]
) -> list[list[Any]]:
    """field_columns(rows) made storable, in place: exactly the values submission_row gives
    verdict by verdict, transposed, without a Python call per verdict for most columns
    (tests/storage compare the two). Raises what submission_row raises for the first of `rows`
    that cannot be stored: one such verdict fails the batch."""
    received = _epochs(columns[_AT["received_at"]])
    durations = columns[_AT["duration_seconds"]]
    if received and (
        min(received) < DATETIME_MIN
        or max(received) > DATETIME_MAX
        or not all(map(math.isfinite, durations))
    ):
        for j in rows:  # the error, and its message, of the first verdict at fault
            submission_row(j)
        raise AssertionError("submission_row accepted what storable_columns refused")
    columns[_AT["received_at"]] = received
    columns[_AT["duration_seconds"]] = list(map(float, durations))
    columns[_AT["started_at"]] = _client_times(columns[_AT["started_at"]])
    columns[_AT["submitted_at"]] = _client_times(columns[_AT["submitted_at"]])
    columns[_AT["reasons"]] = [list(map(str, r)) if r else [] for r in columns[_AT["reasons"]]]
    columns[_AT["first_of_id"]] = [1 if f else 0 for f in columns[_AT["first_of_id"]]]
    return columns


def submission_columns(rows: Sequence[SubmissionJudged]) -> list[list[Any]]:
    """The verdicts as one list per column of SUBMISSION_COLUMNS: submission_row's values."""
    return storable_columns(field_columns(rows), rows)


def insert_sql(table: str, columns: Sequence[str]) -> str:
    """The INSERT head; clickhouse-driver sends the rows natively after it."""
    return f"INSERT INTO {identifier(table)} ({', '.join(identifier(c) for c in columns)}) VALUES"


def insert_values_sql(table: str, columns: Sequence[str], rows: Iterable[Row]) -> str:
    """A whole INSERT with its rows as SQL text (chDB; every value through `literal`)."""
    values = ",".join("(" + ",".join(literal(v) for v in row) + ")" for row in rows)
    return insert_sql(table, columns) + " " + values


# ---------------------------------------------------------------------------------------------
# Queries. Results come back as lists of plain values: datetimes are selected as
# toUnixTimestamp(...) so both adapters return integers.

def existing_keys_sql(keys: Iterable[Key]) -> str:
    """Which of these verdicts are stored: a superset through the primary key, filtered after."""
    keys = list(keys)
    campaigns = sorted({k[0] for k in keys})
    ids = sorted({k[1] for k in keys})
    return (
        "SELECT campaign, submission_id, fingerprint FROM submissions"
        f" WHERE campaign IN {in_list(campaigns)} AND submission_id IN {in_list(ids)}"
    )


def submission_status_sql(campaign: str, submission_id: str) -> str:
    # The first verdict for an id wins; a conflicting resend is stored with first_of_id = 0,
    # and how many there were comes along (the status endpoint's `conflicts`).
    where = f" WHERE campaign = {literal(campaign)} AND submission_id = {literal(submission_id)}"
    return (
        "SELECT submission_id, status, reasons, unit, province,"
        f" (SELECT count() FROM submissions{where} AND first_of_id = 0) FROM submissions{where}"
        " ORDER BY first_of_id DESC, received_at, fingerprint LIMIT 1"
    )


JUDGE_MEMORY_COLUMNS: Final = (
    "campaign", "submission_id", "fingerprint", "first_of_id", "device_hash", "status",
)


def judge_memory_page_sql(after: Key | None, limit: int) -> str:
    """One page of verdicts in key order, strictly after `after` (keyset pagination).

    The tuple comparison is spelled out as ORs of equalities and ranges because 18.16 only
    uses the primary key index for those, not for `(a, b, c) > (x, y, z)`.
    """
    where = ""
    if after is not None:
        c, s, f = (literal(v) for v in after)
        where = (
            f" WHERE campaign > {c}"
            f" OR (campaign = {c} AND submission_id > {s})"
            f" OR (campaign = {c} AND submission_id = {s} AND fingerprint > {f})"
        )
    return (
        f"SELECT {', '.join(JUDGE_MEMORY_COLUMNS)} FROM submissions{where}"
        f" ORDER BY campaign, submission_id, fingerprint LIMIT {literal(int(limit))}"
    )


def judge_memory_of_sql(ids: Iterable[Key2]) -> str:
    """The stored verdicts of these (campaign, submission id)s: a superset through the primary
    key (campaigns x ids), filtered by the caller."""
    ids = list(ids)
    return (
        f"SELECT {', '.join(JUDGE_MEMORY_COLUMNS)} FROM submissions"
        f" WHERE campaign IN {in_list(sorted({c for c, _ in ids}))}"
        f" AND submission_id IN {in_list(sorted({i for _, i in ids}))}"
    )


def device_firsts_sql(devices: Iterable[Key2]) -> str:
    """The accepted verdict of these (campaign, device hash)es (a superset, filtered by the
    caller); min() picks one deterministically if a merge has not collapsed a repeat yet."""
    devices = list(devices)
    return (
        "SELECT campaign, device_hash, min(submission_id) FROM device_firsts"
        f" WHERE campaign IN {in_list(sorted({c for c, _ in devices}))}"
        f" AND device_hash IN {in_list(sorted({d for _, d in devices}))}"
        " GROUP BY campaign, device_hash"
    )


READ_BACK_COLUMNS: Final = tuple(
    f"toUnixTimestamp({c})" if c in ("received_at", "started_at", "submitted_at") else c
    for c in SUBMISSION_COLUMNS
)


def judged_rows_sql(campaign: str, submission_id: str) -> str:
    return (
        f"SELECT {', '.join(READ_BACK_COLUMNS)} FROM submissions"
        f" WHERE campaign = {literal(campaign)} AND submission_id = {literal(submission_id)}"
        " ORDER BY first_of_id DESC, received_at, fingerprint LIMIT 1 BY fingerprint"
    )


# ---------------------------------------------------------------------------------------------
# Review decisions (0006, 0010) and what the final ranking and the relative speed floor read.

OVERRIDE_COLUMNS: Final = (
    "campaign", "submission_id", "decision_id", "order_key", "status", "judged_status", "unit",
    "province", "work_region",
)


def existing_overrides_sql(campaign: str, submission_ids: Iterable[str]) -> str:
    return (
        "SELECT campaign, submission_id, decision_id FROM review_sheets"
        f" WHERE campaign = {literal(campaign)} AND submission_id IN {in_list(submission_ids)}"
    )


REVIEW_TARGET_COLUMNS: Final = (
    "campaign", "submission_id", "status", "unit", "province", "work_region", "link_code",
    "toUnixTimestamp(received_at)", "first_of_id", "channel", "answers_json",
)


def review_targets_by_id_sql(campaign: str, submission_ids: Iterable[str]) -> str:
    return (
        f"SELECT {', '.join(REVIEW_TARGET_COLUMNS)} FROM submissions"
        f" WHERE campaign = {literal(campaign)} AND first_of_id = 1"
        f" AND submission_id IN {in_list(submission_ids)}"
        " ORDER BY submission_id LIMIT 1 BY submission_id"
    )


def review_targets_by_link_sql(
    campaign: str, link_code: str, start: dt.datetime, end: dt.datetime
) -> str:
    # Whole seconds on both sides (literal floors a datetime), as core.review.covers compares.
    return (
        f"SELECT {', '.join(REVIEW_TARGET_COLUMNS)} FROM submissions"
        f" WHERE campaign = {literal(campaign)} AND first_of_id = 1"
        f" AND link_code = {literal(link_code)}"
        f" AND received_at >= {literal(start)} AND received_at < {literal(end)}"
        " ORDER BY submission_id LIMIT 1 BY submission_id"
    )


def review_standing_sql(campaign: str) -> str:
    """Per decision: sheets it covers, and sheets for which it is the latest word."""
    c = literal(campaign)
    return (
        "SELECT decision_id, uniqExact(submission_id), sum(latest) FROM ("
        " SELECT decision_id, submission_id, 0 AS latest FROM review_sheets"
        f" WHERE campaign = {c}"
        " UNION ALL"
        " SELECT argMax(decision_id, order_key) AS decision_id, submission_id, 1 AS latest"
        f" FROM review_sheets WHERE campaign = {c} GROUP BY submission_id"
        ") GROUP BY decision_id"
    )


def submission_review_sql(campaign: str, submission_id: str) -> str:
    return (
        "SELECT argMax(status, order_key), argMax(decision_id, order_key) FROM review_sheets"
        f" WHERE campaign = {literal(campaign)} AND submission_id = {literal(submission_id)}"
        " GROUP BY submission_id"
    )


def rules_versions_sql(campaign: str) -> str:
    return (
        "SELECT DISTINCT rules_version FROM submissions"
        f" WHERE campaign = {literal(campaign)} AND status != 'test' ORDER BY rules_version"
    )


def duration_median_sql(campaign: str, questionnaire_version: str) -> str:
    """The median completion time over the accepted sheets of a version, each sheet once."""
    return (
        "SELECT quantileExact(0.5)(d), count() FROM ("
        " SELECT any(duration_seconds) AS d FROM submissions"
        f" WHERE campaign = {literal(campaign)}"
        f" AND questionnaire_version = {literal(questionnaire_version)}"
        " AND status = 'accepted' AND first_of_id = 1 GROUP BY submission_id)"
    )
