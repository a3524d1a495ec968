"""The store's logic, once: idempotent inserts, counts, status and judge memory over SQL.

An adapter supplies three things: run a query and return its rows as plain values, insert rows
into a table, and close. Everything else (the SQL text, deduplication, paging, locking) is here,
so the ClickHouse server and chDB stores cannot drift apart.

One piece (past 500 lines) on purpose: it is the Store port's one implementation, every method a
short wrapper holding the same lock around SQL that lives elsewhere (sql.py, queries.py,
standing.py, sheets.py, upkeep.py); splitting it would split the lock's discipline, not the SQL.
"""

from __future__ import annotations

import datetime as dt
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Self

from core.counting import Count
from core.ports import (
    AnswerDistribution,
    BreakdownRow,
    JudgeMemoryRow,
    RegionFilter,
    SubmissionStatus,
)
from core.progress import SILENT, Progress
from core.review import DecisionIndex, Override, ReviewTarget, overrides_for, target_of
from schemas.campaign import Question
from schemas.events import ReviewDecided, SubmissionJudged
from storage import migrations, queries, sheets, sql, standing, upkeep

if TYPE_CHECKING:
    import pyarrow as pa

# Keys looked up per query. A batch's ids go into one IN list; past this size the list is
# split so the query text stays well inside max_query_size.
LOOKUP_CHUNK = 20_000
# Verdicts per page when streaming judge memory: bounded memory, few round trips.
MEMORY_PAGE = 100_000
MAX_QUERY_SIZE = 16 * 1024 * 1024


class SqlStore(ABC):
    """A Store over ClickHouse SQL. Thread-safe: one lock serialises every call, which also
    makes "look up existing keys, then insert the rest" atomic within this process."""

    database: str

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._closed = False

    # -- what an adapter provides -------------------------------------------------------------

    @abstractmethod
    def _execute(self, query: str) -> Sequence[Sequence[Any]]:
        """Run one statement; its result rows (empty for DDL), values as plain Python types."""

    @abstractmethod
    def _insert(self, table: str, columns: Sequence[str], rows: Sequence[sql.Row]) -> None:
        """Insert rows given as plain values (datetimes as epoch seconds) in one INSERT."""

    def _insert_columns(
        self, table: str, columns: Sequence[str], data: Sequence[Sequence[Any]]
    ) -> None:
        """Insert rows given column by column (one sequence per column, equally long); an
        adapter whose client takes columns overrides this."""
        self._insert(table, columns, list(zip(*data, strict=True)))

    @abstractmethod
    def _close(self) -> None: ...

    def _stream_arrow(self, query: str, block_rows: int) -> Iterator[pa.RecordBatch]:
        """The rows of one SELECT as Arrow record batches of about `block_rows`, read as the
        consumer asks for them (never the whole result in memory), over a connection of the
        stream's own so the store serves other calls meanwhile. Closing the iterator early
        cancels the query."""
        raise NotImplementedError(f"{type(self).__name__} cannot stream Arrow batches")

    # -- the Store port -----------------------------------------------------------------------

    def migrate(self) -> list[str]:
        with self._lock:
            return migrations.apply(self._execute, self._insert, migrations.load())

    def applied_migrations(self) -> set[str]:
        with self._lock:
            return migrations.applied(self._execute)

    def insert_judged(self, rows: Sequence[SubmissionJudged]) -> int:
        """Insert the verdicts not stored yet (by campaign, submission_id, fingerprint); returns
        how many were inserted. Inserting the same batch again inserts nothing."""
        fields = sql.field_columns(rows)
        keys = sql.column_keys(fields)
        if len(set(keys)) < len(keys):  # a verdict twice in the batch: keep the first
            first: dict[sql.Key, int] = {}
            for i, key in enumerate(keys):
                first.setdefault(key, i)
            keep = list(first.values())
            keys, rows = list(first), [rows[i] for i in keep]
            fields = [[column[i] for i in keep] for column in fields]
        if not keys:
            return 0
        # Converted before taking the lock: a row that cannot be stored fails the batch up front.
        columns = sql.storable_columns(fields, rows)
        with self._lock:
            found = self._existing_keys(keys)
            if found:
                keep = [i for i, key in enumerate(keys) if key not in found]
                columns = [[column[i] for i in keep] for column in columns]
            inserted = len(columns[0])
            if inserted:
                self._insert_columns("submissions", sql.SUBMISSION_COLUMNS, columns)
        return inserted

    def _existing_keys(self, keys: list[sql.Key]) -> set[sql.Key]:
        """Which of these verdict keys are stored already (call with the lock held)."""
        found: set[sql.Key] = set()
        for start in range(0, len(keys), LOOKUP_CHUNK):
            for row in self._execute(sql.existing_keys_sql(keys[start : start + LOOKUP_CHUNK])):
                found.add((str(row[0]), str(row[1]), str(row[2])))
        return found

    def unit_counts(self, campaign: str) -> dict[str, Count]:
        """Counts per unit: sheets under their standing status, from the summing tables and the
        review corrections (storage/standing.py); what leaderboards, pacing, /live and the
        frozen ranking show. The same query as `breakdown(campaign, ["unit"], ...)`."""
        return _per_unit(self._breakdown(
            queries.breakdown_query(campaign, ["unit"], RegionFilter(), source="unit_counts")
        ))

    def exact_unit_counts(self, campaign: str) -> dict[str, Count]:
        """The same counts recomputed from the verdicts themselves (storage/standing.sheets_sql),
        each sheet once, for reconcile."""
        return _per_unit(self._breakdown(
            queries.breakdown_query(campaign, ["unit"], RegionFilter(), source="submissions")
        ))

    # -- review decisions (core/review.py), the final ranking, the relative speed floor --------

    def insert_overrides(self, overrides: Sequence[Override]) -> int:
        """Store the override rows not stored yet; returns how many were new."""
        fresh = {(o.campaign, o.submission_id, o.decision_id): o for o in overrides}
        if not fresh:
            return 0
        with self._lock:
            by_campaign: dict[str, list[str]] = {}
            for campaign, sid, _ in fresh:
                by_campaign.setdefault(campaign, []).append(sid)
            for campaign, ids in by_campaign.items():
                unique = sorted(set(ids))
                for start in range(0, len(unique), LOOKUP_CHUNK):
                    chunk = unique[start : start + LOOKUP_CHUNK]
                    for row in self._execute(sql.existing_overrides_sql(campaign, chunk)):
                        fresh.pop((str(row[0]), str(row[1]), str(row[2])), None)
            if fresh:
                self._insert("review_sheets", standing.REVIEW_SHEET_COLUMNS, [
                    (o.campaign, o.submission_id, o.decision_id, o.order_key, o.status,
                     o.judged_status, o.unit, o.province, o.work_region, o.link_code, o.channel,
                     sql.epoch_seconds(o.received_at), o.answers_json)
                    for o in fresh.values()
                ])
        return len(fresh)

    def review_targets(self, decision: ReviewDecided) -> list[ReviewTarget]:
        """The stored first verdicts a decision names (whether or not it may change them)."""
        queries_: list[str] = []
        if decision.submission_ids:
            ids = sorted(set(decision.submission_ids))
            queries_ = [
                sql.review_targets_by_id_sql(decision.campaign, ids[i : i + LOOKUP_CHUNK])
                for i in range(0, len(ids), LOOKUP_CHUNK)
            ]
        else:
            assert decision.window_start is not None and decision.window_end is not None
            queries_ = [sql.review_targets_by_link_sql(
                decision.campaign, decision.link_code, decision.window_start, decision.window_end
            )]
        out: list[ReviewTarget] = []
        for query in queries_:
            with self._lock:
                rows = self._execute(query)
            out.extend(self._targets(rows))
        return out

    @staticmethod
    def _targets(rows: Sequence[Sequence[Any]]) -> list[ReviewTarget]:
        return [
            ReviewTarget(
                campaign=str(c), submission_id=str(s), status=str(st), unit=str(u),
                province=str(p), work_region=str(w), link_code=str(lk),
                received_at=dt.datetime.fromtimestamp(int(at), dt.UTC),
                first_of_id=bool(int(first)), channel=str(ch), answers_json=str(answers),
            )
            for c, s, st, u, p, w, lk, at, first, ch, answers in rows
        ]

    def review_target(self, campaign: str, submission_id: str) -> ReviewTarget | None:
        """The stored first verdict of a submission id, as a decision sees it."""
        with self._lock:
            rows = self._execute(sql.review_targets_by_id_sql(campaign, [submission_id]))
        return self._targets(rows)[0] if rows else None

    def apply_review(self, decision: ReviewDecided) -> int:
        """Apply a decision to what is stored; returns how many sheets it covers. Idempotent."""
        covered = overrides_for([decision], self.review_targets(decision))
        self.insert_overrides(covered)
        return len(covered)

    def apply_reviews_to(
        self, rows: Sequence[SubmissionJudged], decisions: DecisionIndex
    ) -> int:
        """Apply the known decisions to verdicts just stored; returns the overrides written."""
        if not decisions or not rows:
            return 0
        return self.insert_overrides(decisions.overrides_for(target_of(r) for r in rows))

    def review_rows(self, campaign: str) -> dict[tuple[str, str], str]:
        """Every stored review row of a campaign: (submission id, decision id) -> status."""
        with self._lock:
            rows = self._execute(
                "SELECT submission_id, decision_id, any(status) FROM review_sheets"
                f" WHERE campaign = {sql.literal(campaign)} GROUP BY submission_id, decision_id"
            )
        return {(str(s), str(d)): str(st) for s, d, st in rows}

    def delete_review_rows(self, campaign: str, keys: Sequence[tuple[str, str]]) -> None:
        """Delete these (submission id, decision id) review rows (reconcile --repair)."""
        with self._lock:
            for start in range(0, len(keys), LOOKUP_CHUNK):
                self._execute(
                    f"ALTER TABLE review_sheets DELETE WHERE campaign = {sql.literal(campaign)}"
                    f" AND (submission_id, decision_id) IN"
                    f" {sql.in_list(list(keys[start : start + LOOKUP_CHUNK]))}"
                )
            upkeep.wait_for_mutations(self._execute, self.database, "review_sheets")

    def review_standing(self, campaign: str) -> dict[str, tuple[int, int]]:
        """Per decision id: (sheets it covers, sheets for which it is the latest decision)."""
        with self._lock:
            rows = self._execute(sql.review_standing_sql(campaign))
        return {str(d): (int(n), int(latest)) for d, n, latest in rows}

    def submission_review(self, campaign: str, submission_id: str) -> tuple[str, str] | None:
        """(reviewed status, deciding decision id) of a sheet, if any decision covers it."""
        with self._lock:
            rows = self._execute(sql.submission_review_sql(campaign, submission_id))
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    def rules_versions(self, campaign: str) -> list[str]:
        """The rules versions the campaign's counted (non-test) verdicts were judged by."""
        with self._lock:
            rows = self._execute(sql.rules_versions_sql(campaign))
        return [str(r[0]) for r in rows]

    def duration_median(self, campaign: str, questionnaire_version: str) -> tuple[float, int]:
        """(median completion seconds, sheets) over the accepted sheets of a version."""
        with self._lock:
            rows = self._execute(sql.duration_median_sql(campaign, questionnaire_version))
        samples = int(rows[0][1]) if rows else 0
        return (float(rows[0][0]) if samples else 0.0), samples

    def repair_counts(self) -> None:
        """Count what is stored but was never counted (a crash between the base insert and a
        view's), in every count table. Run at start-up, before any writer; never lowers a
        count."""
        with self._lock:
            upkeep.top_up(self._execute)

    def count_differences(self, campaign: str | None = None) -> list[upkeep.CountDifference]:
        """Every key of every count table whose figures differ from the verdicts' (reconcile)."""
        with self._lock:
            return upkeep.differences(self._execute, campaign)

    def rebuild_counts(self, campaign: str | None = None) -> None:
        """Recompute every count table from the verdicts (reconcile --repair); no writer may
        run meanwhile."""
        with self._lock:
            upkeep.rebuild(self._execute, self.database, campaign)

    def count_hashes(self, campaign: str) -> dict[str, tuple[int, int]]:
        """Per count table and review_sheets: (hash of its content, rows), to compare stores."""
        with self._lock:
            return upkeep.hashes(self._execute, campaign)

    def erase(self, campaign: str, where: str, *, dry_run: bool = False,
              progress: Progress = SILENT) -> int:
        """Delete the sheets matching `where` (a condition over the submissions table, from
        commands/erase.py) with their review rows and finding samples, and move the counts
        accordingly; returns how many verdicts matched."""
        with self._lock:
            ids = [] if dry_run else [str(r[0]) for r in self._execute(
                f"SELECT DISTINCT submission_id FROM submissions WHERE {where}")]
            matched = upkeep.erase(self._execute, self.database, campaign, where,
                                   dry_run=dry_run, progress=progress)
            if ids:
                self._forget_samples(campaign, ids)
        return matched

    def _forget_samples(self, campaign: str, submission_ids: Sequence[str]) -> None:
        """Remove erased ids from the findings' sample lists (the findings table's module)."""
        from storage.findings import forget_samples  # it builds on this module

        forget_samples(self, campaign, submission_ids)

    def submission_status(self, campaign: str, submission_id: str) -> SubmissionStatus | None:
        with self._lock:
            rows = self._execute(sql.submission_status_sql(campaign, submission_id))
        if not rows:
            return None
        sid, status, reasons, unit, province, conflicts = rows[0]
        return SubmissionStatus(
            submission_id=str(sid),
            status=str(status),
            reasons=tuple(str(r) for r in reasons),
            unit=str(unit),
            province=str(province),
            conflicts=int(conflicts),
        )

    def iter_judge_memory(self, page_size: int = MEMORY_PAGE) -> Iterator[JudgeMemoryRow]:
        """Every stored verdict, in key order, one page in memory at a time.

        The lock is held per page, not for the whole walk, so inserts can go on meanwhile;
        verdicts inserted during the walk may or may not be seen.
        """
        after: sql.Key | None = None
        while True:
            with self._lock:
                page = self._execute(sql.judge_memory_page_sql(after, page_size))
            for values in page:
                row = _memory_row(values)
                key = (row.campaign, row.submission_id, row.fingerprint)
                if key == after:
                    continue  # the same verdict twice in a part not merged yet
                after = key
                yield row
            if len(page) < page_size:
                return

    def judge_memory_of(self, ids: Sequence[sql.Key2]) -> list[JudgeMemoryRow]:
        """The stored verdicts of these (campaign, submission id)s, each once."""
        wanted = set(ids)
        found: dict[tuple[str, str, str], JudgeMemoryRow] = {}
        for values in self._looked_up(sql.judge_memory_of_sql, ids):
            row = _memory_row(values)
            if (row.campaign, row.submission_id) in wanted:
                found[(row.campaign, row.submission_id, row.fingerprint)] = row
        return list(found.values())

    def device_firsts(self, devices: Sequence[sql.Key2]) -> dict[sql.Key2, str]:
        """The accepted submission id of each of these (campaign, device hash)es that has one."""
        wanted = set(devices)
        found: dict[sql.Key2, str] = {}
        for campaign, device, sid in self._looked_up(sql.device_firsts_sql, devices):
            key = (str(campaign), str(device))
            if key in wanted:
                found[key] = str(sid)
        return found

    def _looked_up(
        self, query: Callable[[Sequence[sql.Key2]], str], keys: Sequence[sql.Key2]
    ) -> Iterator[Sequence[Any]]:
        """The rows of `query` over `keys`, LOOKUP_CHUNK keys per statement (lock per chunk)."""
        for start in range(0, len(keys), LOOKUP_CHUNK):
            with self._lock:
                rows = self._execute(query(keys[start : start + LOOKUP_CHUNK]))
            yield from rows

    def iter_recent_verdicts(
        self, hours: int, page_size: int = 50_000
    ) -> Generator[SubmissionJudged, None, None]:
        """The counted first verdicts (no test phase, no conflicting resend) received in the
        last `hours` hours before the latest stored one, in the order they were read from the
        raw log (source position): what the anomaly detectors rebuild their open windows from
        at start (stream_processors/findings.py)."""
        with self._lock:
            rows = self._execute(
                "SELECT toUnixTimestamp(max(received_at)), count() FROM submissions"
            )
        if not rows or not int(rows[0][1]):
            return
        since = int(rows[0][0]) // 3600 * 3600 - hours * 3600  # whole hours
        where = (
            f" WHERE received_at >= {sql.literal(since)} AND first_of_id = 1"
            " AND status != 'test'"
        )
        order = " ORDER BY length(source_position), source_position, campaign, submission_id"
        offset = 0
        while True:
            with self._lock:
                page = self._execute(
                    f"SELECT {', '.join(sql.READ_BACK_COLUMNS)} FROM submissions{where}{order}"
                    f" LIMIT {sql.literal(offset)}, {sql.literal(page_size)}"
                )
            for row in page:
                yield self._judged_from_row(row)
            if len(page) < page_size:
                return
            offset += page_size

    def judged_rows(self, campaign: str, submission_id: str) -> list[SubmissionJudged]:
        """Every stored verdict for one id (the first one first), read back in full."""
        with self._lock:
            rows = self._execute(sql.judged_rows_sql(campaign, submission_id))
        return [self._judged_from_row(row) for row in rows]

    def breakdown(
        self, campaign: str, by: Sequence[str], filters: RegionFilter
    ) -> list[BreakdownRow]:
        """Counts per group of `by` (BREAKDOWN_DIMENSIONS; ValueError otherwise), from the
        link/hour summing table when it can answer, else from the verdicts themselves."""
        return self._breakdown(queries.breakdown_query(campaign, by, filters))

    def _breakdown(self, query: queries.BreakdownQuery) -> list[BreakdownRow]:
        with self._lock:
            rows = self._execute(query.sql)
        width = len(query.by)
        return [
            BreakdownRow(
                group=tuple(
                    (name, queries.group_value(name, value))
                    for name, value in zip(query.by, row[:width], strict=True)
                ),
                valid=int(row[width]),
                rejected=int(row[width + 1]),
                test=int(row[width + 2]),
                conflicts=int(row[width + 3]),
            )
            for row in rows
        ]

    def answer_distribution(
        self, campaign: str, question: Question, filters: RegionFilter
    ) -> AnswerDistribution:
        """How accepted submissions in scope answered `question` (see AnswerDistribution), from
        the answer_counts summing table when it has every filter, else from the verdicts."""
        rollup = queries.answer_counts_query(campaign, question, filters)
        query = rollup or queries.distribution_query(campaign, question, filters)
        with self._lock:
            rows = self._execute(query)
        tally = queries.tally_answer_counts if rollup else queries.tally_answers
        accepted, answered, counts = tally(question, rows)
        return AnswerDistribution(
            question=question.id, type=question.type, accepted=accepted, total=answered,
            counts=counts,
        )

    # -- the export's row source (storage/sheets.py) -------------------------------------------

    # Whether an export's csv records are best written as text by the engine (exports/sql.py):
    # yes in process (chDB); a server beside us does the typed columns and pyarrow the text here,
    # so the two processes share the work (ClickHouseStore).
    csv_text: bool = True

    def clock(self) -> int:
        """The store's clock in whole epoch seconds (what `inserted_at` holds)."""
        with self._lock:
            rows = self._execute(sheets.clock_sql())
        return int(rows[0][0])

    def sheet_counts(
        self, campaign: str, filters: RegionFilter, status: sheets.StatusFilter, cut: int
    ) -> dict[tuple[str, str], int]:
        """How many rows `iter_sheets` yields for the same arguments, per (unit, status)."""
        with self._lock:
            rows = self._execute(sheets.counts_sql(campaign, filters, status, cut))
        return {(str(u), str(s)): int(n) for u, s, n in rows}

    def iter_sheets(
        self,
        campaign: str,
        filters: RegionFilter,
        status: sheets.StatusFilter,
        cut: int,
        batch_rows: int = 65_536,
        projection: sheets.Projection | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """One row per sheet in scope (CONTRACT §6: a submission id's first verdict, under its
        standing status after review decisions; conflicting resends left out), stored at or
        before `cut` (see `clock`), as Arrow batches with columns sheets.SHEET_COLUMNS, or the
        columns of `projection` computed from them by the engine.
        `status="accepted"`: only sheets standing accepted. Rows come in no particular order.

        The sheets and their standing status are storage/standing.py's, as every count's
        (storage/sheets.py adds the cut, the scope and the columns); callers rely only on the
        columns above.
        """
        import pyarrow as pa

        if projection is None:
            query = sheets.sheets_sql(campaign, filters, status, cut)
        else:
            query = sheets.projected_sql(campaign, filters, status, cut, projection)
        names = list(sheets.SHEET_COLUMNS) if projection is None else projection.names
        for batch in self._stream_arrow(query, batch_rows):
            if batch.num_rows:
                yield pa.RecordBatch.from_arrays(batch.columns, names=names)

    def aggregate(self, query: str) -> Sequence[Sequence[Any]]:
        """Rows of one read-only aggregate query (reports' figures; the SQL is theirs, in
        reports/queries.py). Refuses anything but a SELECT: this is a read port."""
        if not query.lstrip().upper().startswith("SELECT"):
            raise ValueError("aggregate runs SELECT queries only")
        with self._lock:
            return self._execute(query)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _judged_from_row(row: Sequence[Any]) -> SubmissionJudged:
        fields = dict(zip(sql.SUBMISSION_COLUMNS, row, strict=True))
        for name in ("received_at", "started_at", "submitted_at"):
            if fields[name] is not None:
                fields[name] = dt.datetime.fromtimestamp(int(fields[name]), dt.UTC)
        fields["reasons"] = tuple(str(r) for r in fields["reasons"])
        fields["first_of_id"] = bool(int(fields["first_of_id"]))
        fields["duration_seconds"] = float(fields["duration_seconds"])
        return SubmissionJudged.model_validate(fields)


def _per_unit(rows: Sequence[BreakdownRow]) -> dict[str, Count]:
    """Breakdown rows by unit as Count per credited unit (unknown links' sheets have none)."""
    return {
        str(r.group[0][1]): Count(valid=r.valid, rejected=r.rejected, test=r.test)
        for r in rows if r.group[0][1] != ""
    }


def _memory_row(values: Sequence[Any]) -> JudgeMemoryRow:
    """A row of sql.JUDGE_MEMORY_COLUMNS as plain types."""
    campaign, sid, fingerprint, first_of_id, device_hash, status = values
    return JudgeMemoryRow(
        campaign=str(campaign),
        submission_id=str(sid),
        fingerprint=str(fingerprint),
        first_of_id=bool(int(first_of_id)),
        device_hash=str(device_hash),
        status=str(status),
    )
