"""One export from start to end: check the request, fix the cut (the as-of), count the rows,
stream the sheets from the store block by block through the shaper into a writer, and describe
the result in a codebook. The CLI, the HTTP route and `campaign freeze` all go through `Export`.
"""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from core.ports import RegionFilter
from core.reasons import RULES_VERSION
from core.registry import CampaignState
from exports import columns as cols
from exports.audit import ExportAudit, record_export
from exports.formats import FORMATS, NEEDS_PATH, STATUSES, XLSX_MAX_ROWS
from exports.shape import Shaper
from exports.writers import (
    CsvWriter,
    ParquetWriter,
    SavWriter,
    Writer,
    XlsxTooLarge,
    XlsxWriter,
    spss_names,
)
from storage.sheets import Projection

BLOCK_ROWS: Final = 16_384  # rows per block: ~190 MB peak on the server path, see analysis.md
CODEBOOK_FORMAT: Final = 1


class ExportError(ValueError):
    """A request that cannot be exported, in one line for the user (HTTP 422, CLI exit 2)."""


class StoreChanged(RuntimeError):
    """The rows streamed are not the rows counted at the cut (an erase ran meanwhile, or rows
    of the cut were merged away): the file would not be the export its codebook describes."""


class SheetSource(Protocol):
    """What an export reads (storage.base.SqlStore)."""

    def clock(self) -> int: ...

    def sheet_counts(
        self, campaign: str, filters: RegionFilter, status: Any, cut: int
    ) -> dict[tuple[str, str], int]: ...

    def iter_sheets(
        self, campaign: str, filters: RegionFilter, status: Any, cut: int, batch_rows: int = ...,
        projection: Projection | None = ...,
    ) -> Iterator[pa.RecordBatch]: ...

    def rules_versions(self, campaign: str) -> list[str]: ...

    @property
    def csv_text(self) -> bool:
        """csv records written as text by the engine, or typed columns made text here."""


@dataclass(frozen=True)
class ExportRequest:
    campaign: str
    format: str
    status: str = "accepted"
    filters: RegionFilter = field(default_factory=RegionFilter)
    # None: now. Else an earlier instant: what the store held then (verdicts and decisions
    # stored before it), e.g. the as-of of an earlier export or of a codebook.
    as_of: dt.datetime | None = None
    who: str = ""
    via: str = "cli"
    scope: Mapping[str, str] = field(default_factory=dict)


def check_request(request: ExportRequest, state: CampaignState | None) -> CampaignState:
    """The campaign's state, or ExportError naming what is wrong with the request."""
    if request.format not in FORMATS:
        raise ExportError(
            f"unknown format {request.format!r}: choose from {', '.join(FORMATS)}"
        )
    if request.status not in STATUSES:
        raise ExportError(f"unknown status {request.status!r}: choose accepted or all")
    if state is None:
        raise ExportError(f"unknown campaign {request.campaign!r}")
    f = request.filters
    if f.date_from is not None and f.date_to is not None and f.date_from > f.date_to:
        raise ExportError(f"date_from ({f.date_from}) is after date_to ({f.date_to})")
    return state


def _wait_past(source: SheetSource, second: int, timeout_s: float = 3.0) -> None:
    """Until the store's clock has left `second`: nothing stored later can carry it."""
    deadline = time.monotonic() + timeout_s
    while source.clock() <= second and time.monotonic() < deadline:
        time.sleep(0.05)


class Export:
    """A prepared export: the cut is fixed and the rows counted; `write` streams it once."""

    def __init__(
        self,
        source: SheetSource,
        state: CampaignState | None,
        request: ExportRequest,
        *,
        xlsx_max_rows: int = XLSX_MAX_ROWS,
        block_rows: int = BLOCK_ROWS,
        all_odd: bool = False,
    ) -> None:
        self.source = source
        self.request = request
        self.all_odd = all_odd  # every sheet's answers parsed in Python (exports.sql): tests
        self.state = check_request(request, state)
        self.block_rows = block_rows
        self.started = dt.datetime.now(dt.UTC)
        try:
            self.columns = cols.plan(self.state)
        except ValueError as exc:
            raise ExportError(str(exc)) from exc
        self.cut = self._cut(request.as_of)
        # The as-of: every verdict and decision stored before it, nothing stored since.
        self.as_of = dt.datetime.fromtimestamp(
            self.cut + 1, zoneinfo.ZoneInfo(self.state.definition.timezone)
        )
        counts = source.sheet_counts(request.campaign, request.filters, request.status, self.cut)
        self.expected: dict[str, dict[str, int]] = {}
        for (unit, status), n in sorted(counts.items()):
            self.expected.setdefault(unit, {})[status] = n
        self.total = sum(counts.values())
        if request.format == "xlsx" and self.total > xlsx_max_rows:
            self._audit(0, "refused: too many rows for xlsx")
            raise ExportError(
                f"{self.total:,} rows do not fit an Excel sheet (at most {xlsx_max_rows:,}):"
                " export as csv or parquet, or narrow the filters"
            )
        self.xlsx_max_rows = xlsx_max_rows
        self.rows = 0
        self.by_unit: dict[str, dict[str, int]] = {}

    def _cut(self, as_of: dt.datetime | None) -> int:
        now = self.source.clock()
        if as_of is None:
            _wait_past(self.source, now)
            return now
        if as_of.tzinfo is None:
            raise ExportError("as_of needs a time zone offset, e.g. 2026-09-23T00:00:00+08:00")
        cut = max(int(as_of.timestamp()) - 1, 0)  # before 1970: nothing was stored then
        if cut >= now:
            raise ExportError(f"as_of {as_of.isoformat()} is not in the past")
        return cut

    @property
    def needs_path(self) -> bool:
        return self.request.format in NEEDS_PATH

    def write(self, target: IO[bytes] | Path,
              progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Stream every row into `target` (a path for xlsx and sav, else a binary stream or a
        path); returns the codebook. Audited whether it completes or not."""
        outcome = "failed"
        try:
            codebook = self._write(target, progress)
            outcome = "completed"
            return codebook
        except XlsxTooLarge as exc:
            outcome = f"refused: {exc}"
            raise ExportError(str(exc)) from exc
        except BaseException as exc:
            outcome = f"failed: {type(exc).__name__}"
            raise
        finally:
            self._audit(self.rows, outcome)

    def _write(self, target: IO[bytes] | Path,
               progress: Callable[[int], None] | None) -> dict[str, Any]:
        req = self.request
        text = req.format == "csv" and self.source.csv_text
        shaper = Shaper(self.state, self.columns, csv=text, all_odd=self.all_odd)
        if isinstance(target, Path) and not self.needs_path:
            with target.open("wb") as sink:
                return self._stream(self._writer(sink, shaper.schema), shaper, progress)
        if self.needs_path and not isinstance(target, Path):
            raise TypeError(f"{req.format} is written to a path, not a stream")
        return self._stream(self._writer(target, shaper.schema), shaper, progress)

    def _writer(self, target: IO[bytes] | Path, schema: pa.Schema) -> Writer:
        fmt = self.request.format
        if fmt == "xlsx":
            assert isinstance(target, Path)
            return XlsxWriter(target, self.columns, schema, self.xlsx_max_rows)
        if fmt == "sav":
            assert isinstance(target, Path)
            return SavWriter(target, self.columns, schema)
        assert not isinstance(target, Path)
        if fmt == "csv":
            return CsvWriter(target, self.columns, schema)
        return ParquetWriter(target, self.columns, schema)

    def _stream(self, writer: Writer, shaper: Shaper,
                progress: Callable[[int], None] | None) -> dict[str, Any]:
        req = self.request
        try:
            for raw in self.source.iter_sheets(
                req.campaign, req.filters, req.status, self.cut, self.block_rows,
                projection=shaper.projection,
            ):
                if shaper.csv:
                    assert isinstance(writer, CsvWriter)
                    writer.write_text(shaper.text(raw), raw.num_rows)
                else:
                    writer.write(shaper.typed(raw))
                self._tally(raw)
                self.rows += raw.num_rows
                if progress is not None:
                    progress(raw.num_rows)
            if self.by_unit != self.expected:
                raise StoreChanged(
                    f"the store changed during the export: {self.rows:,} rows streamed,"
                    f" {self.total:,} counted at the cut; export again"
                )
            codebook = self.codebook()
            writer.finish(codebook)
        except BaseException:
            writer.abort()
            raise
        return codebook

    def _tally(self, batch: pa.RecordBatch) -> None:
        # One key per (status, unit): value_counts is a plain kernel, where a group_by imports
        # Acero and Arrow's datasets the first time.
        keys = pc.binary_join_element_wise(batch.column("status"), batch.column("unit"), "\x1f")
        for row in pc.value_counts(keys).to_pylist():
            status, _, unit = row["values"].partition("\x1f")
            per = self.by_unit.setdefault(unit, {})
            per[status] = per.get(status, 0) + int(row["counts"])

    def codebook(self) -> dict[str, Any]:
        """What every column means, and what the file holds (CONTRACT §9's codebook)."""
        req = self.request
        sav = spss_names([c.name for c in self.columns]) if req.format == "sav" else {}
        variables = []
        for c in self.columns:
            v: dict[str, Any] = {"name": c.name, "label": c.label, "type": c.type}
            if c.kind != "fixed":
                v["question"] = c.question
                v["question_type"] = c.kind
            if c.option:
                v["option"] = c.option
            if c.kind == "multi":
                v["values"] = {"0": "not chosen", "1": "chosen"}
            elif c.values:
                v["values"] = list(c.values)
            if req.format == "sav" and c.kind in ("single", "attention"):
                v["sav_codes"] = {str(i + 1): o for i, o in enumerate(c.values)}
            if sav:
                v["sav_name"] = sav[c.name]
            if c.note:
                v["note"] = c.note
            v.update(c.extra)
            variables.append(v)
        return {
            "codebook_format": CODEBOOK_FORMAT,
            "campaign": req.campaign,
            "format": req.format,
            "status": req.status,
            "filters": req.filters.given(),
            "scope": dict(req.scope),
            "as_of": self.as_of.isoformat(),
            "as_of_means": "every verdict and review decision stored before as_of, nothing after",
            "timezone": self.state.definition.timezone,
            "rules_versions": sorted(set(self.source.rules_versions(req.campaign))),
            "rules_version_of_build": RULES_VERSION,
            "questionnaire_version": self.state.definition.questionnaire.version,
            "rows": self.total,
            "rows_by_unit": self.expected,
            "variables": variables,
        }

    def _audit(self, rows: int, outcome: str) -> None:
        req = self.request
        record_export(ExportAudit(
            action="export", who=req.who, via=req.via, at=self.started.isoformat(),
            campaign=req.campaign, format=req.format, status=req.status,
            filters=req.filters.given(), scope=dict(req.scope),
            as_of=self.as_of.isoformat() if hasattr(self, "as_of") else "",
            rows=rows, outcome=outcome,
        ))
