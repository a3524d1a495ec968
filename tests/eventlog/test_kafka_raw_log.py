"""The Kafka raw log: kafka-python's partitioning and CRC kept, acknowledgements relayed in bulk."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid

import crc32c
import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.future import Future
from kafka.partitioner.default import murmur2 as kafka_murmur2
from kafka.record import util as record_util

from core.ports import LogUnavailableError
from eventlog.kafka_log import KafkaRawLog, _AckRelay, murmur2
from runtime.distributed.topics import admin_client


def test_murmur2_is_kafka_pythons_murmur2() -> None:
    keys = [os.urandom(n) for n in range(0, 130) for _ in range(20)]
    keys += [str(uuid.uuid4()).encode() for _ in range(500)]
    keys += [b"", b"\x00", b"\xff\xff\xff", "提交-编号".encode()]
    for key in keys:
        assert murmur2(key) == kafka_murmur2(key) & 0xFFFFFFFF, key


def test_kafka_python_checks_record_batches_with_the_c_crc32c() -> None:
    # Without the crc32c package kafka-python falls back to a pure-Python CRC (a quarter of the
    # collector's CPU once); with it, calc_crc32c is bound to the C function.
    assert record_util.crc32c_c is crc32c.crc32c
    assert record_util.calc_crc32c.__defaults__ == (crc32c.crc32c,)
    assert record_util.calc_crc32c(memoryview(b"123456789")) == 0xE3069283


async def test_outcomes_from_the_sender_thread_settle_each_append_once() -> None:
    loop = asyncio.get_running_loop()
    relay = _AckRelay(loop)
    sent = [Future() for _ in range(500)]
    waiting = [loop.create_future() for _ in sent]
    for future, done in zip(sent, waiting, strict=True):
        relay.watch(future, done)

    def sender() -> None:  # as kafka-python's sender thread completes batches
        for i, future in enumerate(sent):
            if i % 7 == 0:
                future.failure(ConnectionError("broker went away"))
            else:
                future.success(("metadata", i))

    thread = threading.Thread(target=sender)
    thread.start()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    thread.join()
    for i, result in enumerate(results):
        if i % 7 == 0:
            assert isinstance(result, LogUnavailableError), result
        else:
            assert result is None


@pytest.mark.integration
async def test_appends_land_where_kafka_pythons_partitioner_puts_them_once_each(
    kafka_bootstrap: str,
) -> None:
    topic = f"rawlog-{uuid.uuid4().hex[:10]}"
    admin = admin_client(kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 6, 1)])
    finally:
        admin.close()
    raw = KafkaRawLog(kafka_bootstrap, topic, probe_interval_s=0.5)
    try:
        for _ in range(600):  # bounded: 30 s
            if raw.healthy():
                break
            await asyncio.sleep(0.05)
        assert raw.healthy()
        keys = [str(uuid.uuid4()).encode() for _ in range(300)]
        await asyncio.gather(*(raw.append(k, b'{"n":' + str(i).encode() + b"}")
                               for i, k in enumerate(keys)))
    finally:
        raw.close(timeout_s=10)

    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=None,
                             enable_auto_commit=False, consumer_timeout_ms=10_000)
    try:
        partitions = sorted(consumer.partitions_for_topic(topic))
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        assert sum(ends.values()) == len(keys)
        seen: dict[bytes, int] = {}
        for message in consumer:
            assert message.key not in seen
            seen[message.key] = message.partition
            if len(seen) == len(keys):
                break
    finally:
        consumer.close()
    for key in keys:  # kafka-python's DefaultPartitioner, as it computes it
        idx = (kafka_murmur2(key) & 0x7FFFFFFF) % len(partitions)
        assert seen[key] == partitions[idx], key
