"""What one worker process could do without faust: a plain aiokafka consumer that judges each
raw record with the core (both steps, in memory, as the embedded processor and `replay` do) and
stores the verdicts through insert_judged in 5,000-row batches, then would commit offsets.

Not a drop-in replacement: one process judging every partition sees every device, so the
settle step needs no repartition; with several workers the device-keyed step needs one (faust's
`assessed` topic today, or a consumer of a device-keyed topic written in the same loop). It
measures the ceiling the faust machinery leaves on the table (benchmarks.bench_pipeline).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any


def run(
    bootstrap: str,
    topic: str,
    partitions: int,
    n: int,
    store_url: str,
    registry: Any,
    hash_key: str,
    timeout_s: float,
    batch_rows: int = 5000,
) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from core.judge import JudgeState, judge
    from storage import open_store
    from stream_processors.faust_records import position, read_received

    store = open_store(store_url)
    store.migrate()

    async def main() -> dict[str, Any]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            state = JudgeState.empty()
            done = stored = 0
            started = time.perf_counter()
            deadline = time.monotonic() + timeout_s
            while done < n and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=200, max_records=batch_rows)
                rows = []
                for records in batch.values():
                    for r in records:
                        where = position(r.partition, r.offset)
                        received = read_received(r.value, where)
                        done += 1
                        if received is None:
                            continue
                        judged, resend = judge(received, where, registry, state, hash_key)
                        if not resend:
                            rows.append(judged)
                if rows:
                    stored += store.insert_judged(rows)
            seconds = time.perf_counter() - started
            return {
                "events": done,
                "stored": stored,
                "seconds": round(seconds, 2),
                "events_per_s": round(done / seconds) if seconds else 0,
            }
        finally:
            await consumer.stop()

    try:
        return asyncio.run(main())
    finally:
        store.close()
