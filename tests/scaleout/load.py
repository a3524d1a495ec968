"""Load through a balancer by clients that behave as the answering page does: a 502/503/504 or a
dropped connection is answered by resending the same sheet (same submission_id), bounded."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.integration.distributed_stack import Stack

RETRY_STATUSES = frozenset({502, 503, 504})


@dataclass
class LoadResult:
    acked: list[str] = field(default_factory=list)  # submission ids answered 202
    retried: Counter[str] = field(default_factory=Counter)  # what made a client resend
    lock: threading.Lock = field(default_factory=threading.Lock)


def post_until_accepted(
    client: httpx.Client, url: str, body: dict[str, Any], result: LoadResult,
    deadline_s: float = 90.0,
) -> None:
    """Resend the identical sheet until a 202; any other answer, or the deadline, fails."""
    give_up = time.monotonic() + deadline_s
    attempt = 0
    while True:
        attempt += 1
        try:
            r = client.post(url, json=body)
        except httpx.TransportError as exc:
            why = type(exc).__name__
        else:
            if r.status_code == 202:
                with result.lock:
                    result.acked.append(body["submission_id"])
                return
            if r.status_code not in RETRY_STATUSES:
                raise AssertionError(f"{r.status_code} {r.text}: not a retryable answer")
            why = str(r.status_code)
        with result.lock:
            result.retried[why] += 1
        if time.monotonic() > give_up:
            raise AssertionError(f"{body['submission_id']}: no 202 within {deadline_s} s ({why})")
        time.sleep(min(0.05 * attempt, 0.5))


def drive(
    url: str, bodies: Sequence[dict[str, Any]], *, threads: int = 12,
    midway: Callable[[], None] | None = None, midway_after: int = 0,
) -> LoadResult:
    """Post every body (each retried until 202) from `threads` clients; `midway()` runs once
    `midway_after` sheets were accepted, while the rest are still being sent."""
    result = LoadResult()
    accepted = threading.Semaphore(0)
    client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=threads * 2))

    def send(body: dict[str, Any]) -> None:
        post_until_accepted(client, url, body, result)
        accepted.release()

    try:
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            futures = [pool.submit(send, b) for b in bodies]
            if midway is not None:
                for _ in range(midway_after):
                    if not accepted.acquire(timeout=90):
                        break
                midway()
            for f in futures:
                f.result()
    finally:
        client.close()
    return result


class Stream:
    """Clients posting new sheets without pause until stopped, each resent until its 202: the
    load goes on while the test stops and starts processes; `result.acked` grows meanwhile."""

    def __init__(self, url: str, make_body: Callable[[], dict[str, Any]], threads: int = 6) -> None:
        self.url = url
        self.make_body = make_body
        self.result = LoadResult()
        self.bodies: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=threads * 2))
        self._pool = concurrent.futures.ThreadPoolExecutor(threads)
        self._futures = [self._pool.submit(self._run) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set():
            body = self.make_body()
            post_until_accepted(self._client, self.url, body, self.result)
            with self.result.lock:
                self.bodies.append(body)

    def accepted(self) -> int:
        with self.result.lock:
            return len(self.result.acked)

    def wait_for(self, more: int, timeout_s: float = 90.0) -> None:
        """Bounded wait until `more` further sheets were accepted."""
        from tests.integration.distributed_stack import wait_until

        target = self.accepted() + more
        wait_until(f"{more} more sheets accepted", lambda: self.accepted() >= target,
                   timeout_s, 0.05)

    def stop(self) -> list[dict[str, Any]]:
        """Stop the clients (each finishes its sheet) and return every accepted body."""
        self._stop.set()
        try:
            for f in self._futures:
                f.result()
        finally:
            self._pool.shutdown()
            self._client.close()
        return self.bodies


def discard(stack: Stack) -> None:
    """End a test stack's processes at once, in parallel (SIGKILL: nothing in it is kept)."""
    roles = list(stack.roles.values())
    with concurrent.futures.ThreadPoolExecutor(max(1, len(roles))) as pool:
        list(pool.map(lambda role: role.kill(), roles))
    stack.stop()  # closes the logs


def clickhouse_counts(stack: Stack, campaign: str) -> tuple[int, int]:
    """(rows, distinct submission ids) stored for the campaign, read straight from ClickHouse."""
    from clickhouse_driver import Client

    host_port = stack.clickhouse_url.split("://", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    client = Client(host=host, port=int(port), database=stack.database)
    try:
        rows = client.execute(
            "SELECT count(), uniqExact(submission_id) FROM submissions WHERE campaign = %(c)s",
            {"c": campaign})
    finally:
        client.disconnect()
    return int(rows[0][0]), int(rows[0][1])


def raw_records(stack: Stack) -> int:
    """Records in the raw topic (all partitions): the collectors' appends, resends included."""
    from kafka import KafkaConsumer, TopicPartition

    topic = f"{stack.prefix}.submissions.raw"
    consumer = KafkaConsumer(bootstrap_servers=stack.kafka_bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(partitions)
        begins = consumer.beginning_offsets(partitions)
    finally:
        consumer.close()
    return sum(ends[tp] - begins[tp] for tp in partitions)


def valid_counts(stack: Stack, campaign: str) -> dict[str, int]:
    return {unit: row["valid"] for unit, row in stack.board(campaign, "unit").items()}
