"""Posting generated sheets the way an answering page would: at a steady rate, the same body
again after a connection error, a 503 or a 429, so that a 202 is the only thing that ends a
sheet (`run_generator`, used by `survey-ingest demo` and the benchmarks)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import json
import logging
import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from schemas.campaign import CampaignDefinition
from simulation.generator import GeneratedSheet, SheetFactory

log = logging.getLogger(__name__)

_RETRY_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})


@dataclass
class GeneratorStats:
    """What a run did. Every generated sheet ends in exactly one of accepted, refused, gave_up
    or unsent."""

    generated: int = 0
    accepted: int = 0  # answered 2xx (202: durably taken)
    refused: int = 0  # answered 4xx other than 408/429: not retried
    gave_up: int = 0  # still unanswered after the last retry, or when the run stopped
    unsent: int = 0  # generated but never posted because the run stopped first
    retries: int = 0
    transport_errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    flaws: Counter[str] = field(default_factory=Counter)  # by flaw kind; "valid" for none
    elapsed_s: float = 0.0

    @property
    def errors(self) -> int:
        return self.refused + self.gave_up

    @property
    def sent_per_s(self) -> float:
        return (self.accepted + self.refused) / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "generated": self.generated, "accepted": self.accepted, "refused": self.refused,
            "gave_up": self.gave_up, "unsent": self.unsent, "retries": self.retries,
            "transport_errors": self.transport_errors, "errors": self.errors,
            "statuses": dict(sorted(self.statuses.items())),
            "flaws": dict(sorted(self.flaws.items())),
            "elapsed_s": round(self.elapsed_s, 3), "sent_per_s": round(self.sent_per_s, 1),
        }


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


async def _sleep_unless(event: asyncio.Event, seconds: float) -> bool:
    """Sleep, cut short when the event is set; True when it was."""
    if event.is_set():
        return True
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout=max(0.0, seconds))
    return event.is_set()


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    first_backoff_s: float = 0.2
    max_backoff_s: float = 5.0
    max_retry_after_s: float = 60.0  # a server's Retry-After is honoured up to this


async def _deliver(
    client: httpx.AsyncClient,
    url: str,
    sheet: GeneratedSheet,
    halt: asyncio.Event,
    stats: GeneratorStats,
    policy: RetryPolicy,
    jitter: random.Random,
) -> None:
    """Post one sheet until it is answered for good; the same bytes every time, so a retry of
    something the collector did take is absorbed as an identical resend."""
    payload = json.dumps(sheet.body, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {"content-type": "application/json"}
    backoff = policy.first_backoff_s
    for attempt in range(1, policy.max_attempts + 1):
        wait: float | None = None
        try:
            response = await client.post(url, content=payload, headers=headers)
        except httpx.TransportError as exc:
            stats.transport_errors += 1
            log.debug("posting %s failed: %r", sheet.body.get("submission_id"), exc)
        else:
            stats.statuses[response.status_code] += 1
            if response.is_success:
                stats.accepted += 1
                return
            if response.status_code not in _RETRY_STATUSES:
                stats.refused += 1
                if stats.refused == 1:
                    log.warning("collector refused a sheet: %s %s",
                                response.status_code, response.text[:500])
                return
            hint = _retry_after(response)
            if hint is not None:
                wait = min(hint, policy.max_retry_after_s)
        if attempt == policy.max_attempts:
            break
        if wait is None:  # full jitter keeps many clients from retrying in lockstep
            wait = jitter.uniform(backoff / 2, backoff)
            backoff = min(backoff * 2, policy.max_backoff_s)
        if await _sleep_unless(halt, wait):
            break
        stats.retries += 1
    stats.gave_up += 1


async def run_generator(
    base_url: str,
    definition: CampaignDefinition,
    *,
    rate_per_s: float,
    duration_s: float | None = None,
    concurrency: int = 16,
    stop_event: asyncio.Event | None = None,
    seed: int | None = None,
    valid_share: float = 0.9,
    retry: RetryPolicy | None = None,
    request_timeout_s: float = 10.0,
    drain_s: float = 5.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> GeneratorStats:
    """Post generated sheets to `{base_url}/v1/submissions` at about `rate_per_s`.

    Runs until `stop_event` is set or `duration_s` has passed (forever when both are None). At
    most `concurrency` requests are in flight; when the server cannot keep up the rate drops
    instead of a backlog growing. On stopping, requests in flight get `drain_s` to finish and
    are not retried again. `seed` fixes the sheets: the same ones, in the same order, as
    make_sheet with `random.Random(seed)` (None: a fresh stream every run, so a demo restarted
    on the same data does not resend the last run's submission ids).
    """
    if rate_per_s <= 0:
        raise ValueError(f"rate_per_s must be positive, not {rate_per_s}")
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    rng = random.Random(seed)
    jitter = random.Random()  # retry timing only; kept apart so the sheets match make_sheet's
    factory = SheetFactory(definition, valid_share=valid_share)
    policy = retry or RetryPolicy()
    stop = stop_event if stop_event is not None else asyncio.Event()
    halt = asyncio.Event()
    stats = GeneratorStats()
    url = base_url.rstrip("/") + "/v1/submissions"
    queue: asyncio.Queue[GeneratedSheet | None] = asyncio.Queue(maxsize=concurrency * 2)
    loop = asyncio.get_running_loop()
    started = time.monotonic()

    async def relay_stop() -> None:
        await stop.wait()
        halt.set()

    async def worker(client: httpx.AsyncClient) -> None:
        while (sheet := await queue.get()) is not None:
            if halt.is_set():
                stats.unsent += 1
                continue
            await _deliver(client, url, sheet, halt, stats, policy, jitter)

    async def produce() -> None:
        t0 = loop.time()
        deadline = math.inf if duration_s is None else t0 + duration_s
        sent = 0
        while not halt.is_set():
            now = loop.time()
            due = t0 + sent / rate_per_s
            if now - due > 1.0:  # fell behind (slow server): carry on from now, no burst
                t0, due = now - sent / rate_per_s, now
            if due >= deadline:
                return
            if due > now and await _sleep_unless(halt, due - now):
                return
            sheet = factory.make(rng, dt.datetime.now(dt.UTC))
            stats.generated += 1
            stats.flaws[sheet.flaw or "valid"] += 1
            while True:
                try:
                    queue.put_nowait(sheet)
                    break
                except asyncio.QueueFull:
                    if await _sleep_unless(halt, 0.005):
                        stats.unsent += 1
                        return
            sent += 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    # trust_env off: a proxy from the environment would sit between a load generator and its
    # target and measure itself.
    async with httpx.AsyncClient(
        timeout=request_timeout_s, limits=limits, transport=transport, trust_env=False
    ) as client:
        relay = asyncio.create_task(relay_stop())
        workers = [asyncio.create_task(worker(client)) for _ in range(concurrency)]
        try:
            await produce()
        finally:
            halt.set()
            while not queue.empty():
                if queue.get_nowait() is not None:
                    stats.unsent += 1
            for _ in workers:
                queue.put_nowait(None)
            _, pending = await asyncio.wait(workers, timeout=drain_s)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            stats.gave_up += len(pending)
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay
            stats.elapsed_s = time.monotonic() - started
    log.info("generator finished: %s", json.dumps(stats.summary()))
    return stats
