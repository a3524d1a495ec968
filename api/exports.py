"""Data out over HTTP: `GET /v1/campaigns/{c}/export` (a file, streamed) and
`GET /v1/campaigns/{c}/export/codebook` (what that file would hold, as JSON).

Who may call: analysts and admins for the whole campaign, coordinators for their own work region
(CONTRACT §7): each route declares `scoped_read(ANALYSIS)`, and a coordinator's filters are
AND-ed with its work region (a filter outside it is 403).

A slow client cannot turn an export into server memory: csv and parquet are written by a thread
into a bounded pipe (`BoundedPipe`: at most PIPE_CHUNKS chunks of PIPE_CHUNK_BYTES) whose `write`
blocks while the client has not taken what is there, which holds the store's stream back in turn;
a client that goes away ends the export. xlsx and sav are finished by their libraries at the end,
so they are written to a temporary file first and then sent from disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import os
import queue
import tempfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from api.access_admin import record_audit
from api.deps import ANALYSIS, Access, CampaignId, scoped_read
from api.regional import Filters, region_filter
from api.services import Services
from core.ports import RegionFilter
from exports.formats import MEDIA_TYPES

if TYPE_CHECKING:
    # exports.run brings pyarrow and numpy: imported by the first export, not at start-up
    # (`serve` takes its first sheet without them; tests/runtime/test_startup_imports.py).
    from exports.run import Export, ExportRequest

PIPE_CHUNK_BYTES: Final = 256 * 1024
PIPE_CHUNKS: Final = 8  # at most ~2 MiB in flight per export
FILE_CHUNK_BYTES: Final = 1024 * 1024
KNOWN_PARAMS: Final = frozenset(
    {"format", "status", "as_of", *inspect.signature(region_filter).parameters}
)


class ClientGone(Exception):
    """The reader of a pipe went away; the writer stops."""


class BoundedPipe:
    """A write-only binary stream feeding an async reader through a bounded queue."""

    def __init__(self, chunk_bytes: int = PIPE_CHUNK_BYTES, chunks: int = PIPE_CHUNKS) -> None:
        self.chunk_bytes = chunk_bytes
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=chunks)
        self._buffer = bytearray()
        self._position = 0
        self.closed_by_reader = threading.Event()

    # -- the writer's side (a worker thread) ----------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._buffer += data
        self._position += len(data)
        if len(self._buffer) >= self.chunk_bytes:
            self._put(bytes(self._buffer))
            self._buffer.clear()
        return len(data)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        pass

    @property
    def closed(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def _put(self, item: bytes | BaseException | None) -> None:
        while True:
            if self.closed_by_reader.is_set():
                raise ClientGone("the client went away")
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def finish(self, error: BaseException | None = None) -> None:
        """The writer is done (or failed): flush, then tell the reader."""
        with contextlib.suppress(ClientGone):
            if self._buffer and error is None:
                self._put(bytes(self._buffer))
            self._buffer.clear()
            self._put(error)

    # -- the reader's side (the event loop) -----------------------------------------------------

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            while True:
                try:
                    # A bounded wait: a reader cancelled meanwhile (the client went away)
                    # frees its worker thread within it.
                    item = await asyncio.to_thread(self._queue.get, True, 0.5)
                except queue.Empty:
                    continue
                if item is None:
                    return
                if isinstance(item, BaseException):
                    # Headers are sent: all that is left is to end the body early.
                    return
                yield item
        finally:
            self.closed_by_reader.set()


def _request(
    services: Services, campaign: str, request: Request, filters: RegionFilter, fmt: str,
    status: str, as_of: dt.datetime | None, access: Access,
) -> ExportRequest:
    """The export asked for, narrowed to the caller's scope (a coordinator: its work region;
    a filter outside it is 403)."""
    from exports.run import ExportRequest

    filters = access.narrow(filters)
    caller = access.caller
    who = f"{caller.role.value} token {caller.token_id} ({caller.label})" if caller else "anonymous"
    unknown = sorted(set(request.query_params) - KNOWN_PARAMS)
    if unknown:
        raise HTTPException(
            422, f"unknown filter {unknown[0]!r}: choose from {', '.join(sorted(KNOWN_PARAMS))}"
        )
    if services.registry.get(campaign) is None:
        raise HTTPException(404, f"unknown campaign {campaign!r}")
    return ExportRequest(campaign=campaign, format=fmt, status=status, filters=filters,
                         as_of=as_of, who=who, via="http", scope=access.scope)


async def _prepare(services: Services, req: ExportRequest) -> Export:
    from exports.run import Export, ExportError, SheetSource

    source: SheetSource = services.store  # type: ignore[assignment]
    try:
        return await asyncio.to_thread(Export, source, services.registry.get(req.campaign), req)
    except ExportError as exc:
        raise HTTPException(422, str(exc)) from exc


def _filename(export: Export) -> str:
    req = export.request
    stamp = export.as_of.strftime("%Y%m%dT%H%M%S")
    return f"{req.campaign}-{req.status}-{stamp}.{req.format}"


async def _from_file(path: Path, directory: tempfile.TemporaryDirectory[str]) -> AsyncIterator[
    bytes
]:
    try:
        with path.open("rb") as f:
            while chunk := await asyncio.to_thread(f.read, FILE_CHUNK_BYTES):
                yield chunk
    finally:
        directory.cleanup()


def build_exports_router(services: Services) -> APIRouter:
    router = APIRouter(tags=["exports"])

    @router.get("/v1/campaigns/{campaign}/export", response_class=StreamingResponse)
    async def export(
        campaign: CampaignId,
        request: Request,
        filters: Filters,
        access: Annotated[Access, scoped_read(ANALYSIS)],
        format: Annotated[str, Query(description="csv, xlsx, sav or parquet")] = "csv",
        status: Annotated[str, Query(description="accepted (default) or all")] = "accepted",
        as_of: Annotated[dt.datetime | None, Query(
            description="what the store held then (an earlier export's as_of); default now"
        )] = None,
    ) -> StreamingResponse:
        """One row per answer sheet under its standing status, in the contract's columns
        (CONTRACT §9), as a file. Headers: `X-Export-Rows`, `X-Export-As-Of`. Who may call:
        analyst and admin (the whole campaign), coordinator (its work region)."""
        req = _request(services, campaign, request, filters, format, status, as_of, access)
        prepared = await _prepare(services, req)
        await record_audit(services, access, "export", campaign, {
            "format": req.format, "status": req.status, "rows": str(prepared.total),
            "as_of": prepared.as_of.isoformat(), **req.filters.given()})
        headers = {
            "content-disposition": f'attachment; filename="{_filename(prepared)}"',
            "x-export-rows": str(prepared.total),
            "x-export-as-of": prepared.as_of.isoformat(),
            "cache-control": "no-store",
        }
        media = MEDIA_TYPES[req.format]
        if prepared.needs_path:
            from exports.run import ExportError


            directory = tempfile.TemporaryDirectory(prefix="survey-export-")
            path = Path(directory.name) / f"export.{req.format}"
            try:
                await asyncio.to_thread(prepared.write, path)
            except ExportError as exc:
                directory.cleanup()
                raise HTTPException(422, str(exc)) from exc
            except BaseException:
                directory.cleanup()
                raise
            headers["content-length"] = str(os.path.getsize(path))
            return StreamingResponse(_from_file(path, directory), media_type=media,
                                     headers=headers)
        pipe = BoundedPipe()

        def produce() -> None:
            try:
                prepared.write(pipe)  # type: ignore[arg-type]
            except BaseException as exc:
                pipe.finish(exc)
            else:
                pipe.finish()

        threading.Thread(target=produce, name="export", daemon=True).start()
        return StreamingResponse(pipe.chunks(), media_type=media, headers=headers)

    @router.get("/v1/campaigns/{campaign}/export/codebook")
    async def codebook(
        campaign: CampaignId,
        request: Request,
        filters: Filters,
        access: Annotated[Access, scoped_read(ANALYSIS)],
        format: str = "csv",
        status: str = "accepted",
        as_of: dt.datetime | None = None,
    ) -> dict[str, Any]:
        """The codebook of the export the same parameters give (pass the export's `as_of` for
        the same rows): every column with label, type and values, the rules versions, the
        as-of, and the rows per unit and status. Who may call: as for the export."""
        req = _request(services, campaign, request, filters, format, status, as_of, access)
        prepared = await _prepare(services, req)
        return prepared.codebook()

    return router
