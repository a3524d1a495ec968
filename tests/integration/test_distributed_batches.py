"""The worker's batches: batch records keep co-partitioning, and a worker killed in the middle of
a large batch (a backlog it was catching up on) loses nothing and counts nothing twice."""

from __future__ import annotations

import concurrent.futures
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from clickhouse_driver import Client
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from stream_processors.faust_records import pack_by_partition, partition_for, unpack
from tests.helpers import campaign_definition, sheet
from tests.integration.distributed_stack import Stack, wait_until
from tests.integration.test_distributed_contract import verdict
from tests.integration.test_distributed_crash import stored_ids, valid_counts

# -- batch records (no services) -----------------------------------------------------------------


def test_every_value_of_a_batch_record_hashes_to_the_records_partition() -> None:
    # The reference is kafka-python's murmur2, an implementation apart from the one used.
    items = [(f"2026\x1f{random.getrandbits(128):032x}".encode(), f"v{i}".encode())
             for i in range(3000)]
    for partitions in (1, 4, 8, 13):
        records = pack_by_partition(items, partitions)
        seen: list[bytes] = []
        by_value = dict((v, k) for k, v in items)
        for partition, key, record in records:
            assert partition == (kafka_python_murmur2(key) & 0x7FFFFFFF) % partitions
            values = list(unpack(record, "test"))
            assert values
            for value in values:
                assert partition_for(by_value[value], partitions) == partition
            seen.extend(values)
        # Nothing lost, nothing doubled, and each partition's values keep their order.
        assert sorted(seen) == sorted(v for _, v in items)
        for p in range(partitions):
            mine = [v for k, v in items if partition_for(k, partitions) == p]
            assert [v for q, _, r in records if q == p for v in unpack(r, "test")] == mine


def test_batch_records_stay_under_the_size_cap_and_plain_records_still_read() -> None:
    items = [(b"same-key", bytes([65 + i % 26]) * 1000) for i in range(500)]
    records = pack_by_partition(items, 8, max_bytes=20_000)
    assert len(records) > 20 and all(len(r) <= 20_000 for _, _, r in records)
    assert [v for _, _, r in records for v in unpack(r, "test")] == [v for _, v in items]
    assert list(unpack(b'{"kind": "submission.judged"}', "test")) == [
        b'{"kind": "submission.judged"}'
    ]


def test_a_truncated_batch_record_yields_only_its_whole_values() -> None:
    (_, _, record), = pack_by_partition([(b"k", b"one"), (b"k", b"two")], 1)
    assert list(unpack(record[:-1], "test")) == [b"one"]


# -- a worker killed in the middle of a large batch ----------------------------------------------

BACKLOG = 4000


@pytest.fixture(scope="module")
def stack(new_stack: Callable[..., Stack]) -> Iterator[Stack]:
    s = new_stack().start()
    yield s
    s.stop()


@pytest.mark.integration
def test_worker_killed_mid_batch_on_a_backlog_loses_nothing_and_counts_once(stack: Stack) -> None:
    campaign = "c-batch-kill"
    assert stack.define(campaign_definition(campaign)).status_code == 200
    probe = sheet(campaign, "NoSuch12")
    stack.post_until_taken(probe, 10)
    # A backlog: the worker is stopped while the sheets arrive, so on restart it takes full
    # batches (up to 1,000 records) at once.
    worker = stack.roles["worker"]
    worker.stop()

    links = {"Gd7kQ2xP": "gd-cyber", "Gx1aB2cD": "gx-net", "Sh9zY8xW": "sh-uni"}
    # Every fourth sheet reuses an earlier sheet's device: the device table decides which one
    # is credited, so it must survive the kill on the partition it belongs to.
    bodies: list[dict[str, Any]] = []
    for i in range(BACKLOG):
        body = sheet(campaign, random.choice(list(links)))
        if i % 4 == 3:
            body["device_id"] = bodies[i - 1]["device_id"]
        bodies.append(body)
    with httpx.Client(timeout=20, limits=httpx.Limits(max_connections=16)) as client:

        def send(body: dict[str, Any]) -> None:
            r = client.post(f"{stack.collector_url}/v1/submissions", json=body)
            assert r.status_code == 202, r.text

        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            list(pool.map(send, bodies))

    stack.start_worker()
    # Killed as soon as the first verdicts are stored: batches are being judged and sent.
    wait_until("verdicts stored before the kill",
               lambda: len(stored_ids(stack, campaign)) > 1, 120, 0.05)
    stack.roles["worker"].kill()
    stored_at_kill = len(stored_ids(stack, campaign))
    stack.start_worker()
    stack.wait_worker_ready(90)

    expected_total = 1 + BACKLOG  # every 202 has exactly one stored verdict
    wait_until("every sheet stored",
               lambda: len(stored_ids(stack, campaign)) >= expected_total, 180, 0.5)
    time.sleep(1.5)  # late duplicates would show now
    ids = stored_ids(stack, campaign)
    assert sorted(ids) == sorted([probe["submission_id"], *(b["submission_id"] for b in bodies)])
    assert stored_at_kill < expected_total, "the kill came after the last verdict; nothing tested"
    # One credited sheet per device (which one of a pair depends on the order the raw partitions
    # are read in): 3,000 devices among the 4,000 sheets, so 3,000 valid.
    assert sum(valid_counts(stack, campaign).values()) == BACKLOG - BACKLOG // 4
    reconciled = stack.run("reconcile")
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr


@pytest.mark.integration
def test_tables_written_in_batches_are_recovered_after_a_restart(stack: Stack) -> None:
    """What the tables remember (fingerprints per id, first accepted sheet per device) is
    written by the batched agents; a restarted worker rebuilds both from their changelogs."""
    campaign = "c-batch-restart"
    assert stack.define(campaign_definition(campaign)).status_code == 200
    first = sheet(campaign)
    stack.post_until_taken(first, 10)
    assert verdict(stack, campaign, first["submission_id"])["status"] == "accepted"

    stack.roles["worker"].stop()  # SIGTERM; then a fresh process rebuilds its tables
    stack.start_worker()
    stack.wait_worker_ready(90)

    # Same id, other content: the first one stands. Same device, new id: the first is credited.
    changed = {**first, "answers": {**first["answers"], "q1": 2}}
    same_device = sheet(campaign, device_id=first["device_id"])
    for body in (changed, same_device):
        assert stack.post(body).status_code == 202
    again = verdict(stack, campaign, same_device["submission_id"])
    assert (again["status"], again["reasons"]) == ("rejected", ["duplicate_respondent"])
    wait_until("both contents of the id stored",
               lambda: stored_ids(stack, campaign).count(first["submission_id"]) == 2, 90, 0.25)
    host, port = stack.clickhouse_url.split("://", 1)[1].split("/", 1)[0].split(":")
    client = Client(host=host, port=int(port), database=stack.database)
    try:
        rows = client.execute(
            "SELECT first_of_id, status, reasons FROM submissions WHERE submission_id = %(sid)s",
            {"sid": first["submission_id"]})
    finally:
        client.disconnect()
    assert sorted(rows) == [(0, "rejected", ["duplicate_submission"]), (1, "accepted", [])]
