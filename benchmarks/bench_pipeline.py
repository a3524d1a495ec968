"""Processing rates: one distributed worker against a plain consumer of the same raw topic, and the
embedded processor against judging alone.

distributed  N generated sheets are written to a fresh raw topic (as the collector writes them),
             then read by
               - plain consumers (kafka-python, and aiokafka which the worker uses) that only read
                 every record: the raw read rate; the faster one is the baseline
               - one `survey-ingest worker` (faust: assess -> settle -> judged topic -> sink ->
                 ClickHouse, where the counts view is fed): events/s from its first verdict to
                 its last, both as judged (raw offsets the faust app committed) and as stored
                 and counted (ClickHouse)
embedded     N records in a file log, then in one process
               - judge only: decode + core judge, nothing stored (the baseline)
               - EmbeddedProcessor.process_batch until done: judge + chDB insert + offset commit

    python -m benchmarks.bench_pipeline [--quick] [--only distributed|embedded] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import support as s


def _records(definition: Any, n: int, run: str) -> list[tuple[bytes, bytes]]:
    now = dt.datetime.now(dt.UTC)
    return [
        (b["submission_id"].encode(), s.received_record(b, now, f"{i:032x}"))
        for i, b in enumerate(s.unique_bodies(definition, n, run))
    ]


# -- distributed ---------------------------------------------------------------------------------


def _fill_topic(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> float:
    from kafka import KafkaProducer

    from eventlog.kafka_log import producer_config

    producer = KafkaProducer(**producer_config(bootstrap, linger_ms=20))
    t = time.perf_counter()
    try:
        futures = [producer.send(topic, key=k, value=v) for k, v in records]
        producer.flush(timeout=300)
        for f in futures[-100:]:
            f.get(timeout=30)
    finally:
        producer.close(timeout=30)
    return time.perf_counter() - t


def _read_kafka_python(bootstrap: str, topic: str, n: int, timeout_s: float) -> dict[str, Any]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        group_id=None,
        enable_auto_commit=False,
        max_poll_records=5000,
        fetch_max_bytes=50 * 1024 * 1024,
    )
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        return _timed_read(
            lambda: [r for rs in consumer.poll(timeout_ms=500).values() for r in rs], n, timeout_s
        )
    finally:
        consumer.close()


def _read_aiokafka(
    bootstrap: str, topic: str, partitions: int, n: int, timeout_s: float
) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

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
            # Timed from the seek: aiokafka fetches ahead in the background, so "from the first
            # record" would leave out most of the reading.
            count, first, last = 0, time.perf_counter(), None
            deadline = time.monotonic() + timeout_s
            while count < n and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=500, max_records=5000)
                got = sum(len(rs) for rs in batch.values())
                for rs in batch.values():
                    for r in rs:
                        _ = r.value
                if got:
                    count += got
                    last = time.perf_counter()
            return _rate(count, first, last)
        finally:
            await consumer.stop()

    return asyncio.run(main())


class _Committed:
    """Records of `topic` the consumer group `group` has committed (summed over partitions).

    The worker's `judged` figure: the faust app commits a raw record once its assess step's
    outputs are in Kafka. (The judged topic itself now holds batch records, so its end offset no
    longer counts verdicts.) Resolution: faust's commit interval (1 s).
    """

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        from kafka import KafkaAdminClient

        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
        self.group, self.topic = group, topic

    def __call__(self) -> int:
        # kafka-python 3.x: list_group_offsets({group: None}) -> {group: {tp: OffsetAndMetadata}}
        offsets = self.admin.list_group_offsets({self.group: None}).get(self.group, {})
        return sum(o.offset for tp, o in offsets.items() if tp.topic == self.topic and o.offset > 0)

    def close(self) -> None:
        self.admin.close()


def _timed_read(poll: Any, n: int, timeout_s: float) -> dict[str, Any]:
    count, first, last = 0, time.perf_counter(), None
    deadline = time.monotonic() + timeout_s
    while count < n and time.monotonic() < deadline:
        records = poll()
        for r in records:
            _ = r.value
        if records:
            count += len(records)
            last = time.perf_counter()
    return _rate(count, first, last)


def _rate(count: int, first: float | None, last: float | None) -> dict[str, Any]:
    # From the seek to the last record: connecting and joining are not reading.
    span = (last - first) if first is not None and last is not None else 0.0
    return {
        "records": count,
        "seconds": round(span, 3),
        "events_per_s": round(count / span) if span > 0 else 0,
    }


def distributed(quick: bool, work: Path) -> dict[str, Any]:
    from runtime.distributed.registry import RegistryPublisher
    from schemas.settings import Settings
    from stream_processors.faust_topology import Topology

    n = 20_000 if quick else 100_000
    bootstrap = s.kafka_bootstrap()
    ch = s.clickhouse_base()
    run_tag = s.tag()
    prefix = f"bench-p{run_tag}"
    database = f"bench_pipe_{run_tag}"
    env = {
        "SURVEY_KAFKA_BOOTSTRAP": bootstrap,
        "SURVEY_TOPIC_PREFIX": prefix,
        "SURVEY_CLICKHOUSE_URL": f"{ch}/{database}",
        "SURVEY_HASH_KEY": s.HASH_KEY,
        "PYTHONUNBUFFERED": "1",
    }
    settings = Settings(kafka_bootstrap=bootstrap, topic_prefix=prefix)
    topology = Topology.of(settings)
    definition = s.bench_definition()
    try:
        done = subprocess.run(
            [*s.CLI, "migrate"],
            env={**os.environ, **env},
            cwd=s.ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if done.returncode != 0:
            raise RuntimeError(f"migrate failed: {done.stderr[-2000:]}")
        publisher = RegistryPublisher(bootstrap, topology.registry)
        try:
            publisher.define(definition)
        finally:
            publisher.close()
        s.log(f"pipeline: writing {n:,} records to {topology.raw}")
        records = _records(definition, n, f"pipe{run_tag}")
        fill_s = _fill_topic(bootstrap, topology.raw, records)
        del records
        end = s.topic_end(bootstrap, topology.raw)
        if end != n:
            raise RuntimeError(f"raw topic holds {end} records, expected {n}")
        read_timeout = 120.0
        kp = _read_kafka_python(bootstrap, topology.raw, n, read_timeout)
        s.log(f"pipeline: kafka-python plain read {kp['events_per_s']:,} records/s")
        ak = _read_aiokafka(bootstrap, topology.raw, settings.raw_partitions, n, read_timeout)
        s.log(f"pipeline: aiokafka plain read {ak['events_per_s']:,} records/s")

        metrics_port = s.free_port()
        worker = s.Proc(
            "worker",
            [
                *s.CLI,
                "worker",
                "--instance-id",
                f"{prefix}-w1",
                "--metrics-port",
                str(metrics_port),
            ],
            work / "worker.log",
            env=env,
            cwd=work,
        )  # faust writes <app>-data/ here
        client = s.clickhouse_client(database)
        committed = _Committed(bootstrap, topology.app_id, topology.raw)
        samples: list[tuple[float, int, int]] = []
        try:
            deadline = time.monotonic() + (240 if quick else 600)
            meter: s.CpuMeter | None = None
            meter_t0, stored_t0 = 0.0, 0
            t0 = time.monotonic()
            stored = judged = 0
            while time.monotonic() < deadline:
                worker.check()
                judged = committed()
                stored = int(client.execute("SELECT count() FROM submissions")[0][0])
                now = time.monotonic() - t0
                samples.append((now, judged, stored))
                if meter is None and judged > 0:
                    meter_t0, stored_t0 = time.monotonic(), stored
                    meter = s.CpuMeter(
                        {
                            "worker": worker.tree,
                            "kafka_broker": s.kafka_pids,
                            "clickhouse": s.clickhouse_pids,
                        }
                    ).__enter__()
                    if os.environ.get("BENCH_PYSPY_OUT"):
                        from benchmarks.profile import spy

                        spy(worker.pid, 10, Path(os.environ["BENCH_PYSPY_OUT"]))
                if stored >= n:
                    break
                time.sleep(0.25)
            cpu = meter.stop() if meter is not None else {}
            if meter is not None and stored > stored_t0:
                # CPU per event holds up better than events/s on a shared machine: a worker
                # that other processes starve is slower, not costlier.
                worker_cpu_s = cpu["cores"]["worker"] * (time.monotonic() - meter_t0)
                cpu["worker_cpu_us_per_event"] = round(worker_cpu_s / (stored - stored_t0) * 1e6)
        finally:
            worker.stop(30)
            client.disconnect()
            committed.close()
        # The same records through a consumer loop without faust (benchmarks/proposals).
        from benchmarks.proposals import plain_worker

        plain_db = f"{database}_plain"
        plain_cpu0 = time.process_time()  # it runs in this process (one thread)
        try:
            plain = plain_worker.run(
                bootstrap,
                topology.raw,
                settings.raw_partitions,
                n,
                f"{ch}/{plain_db}",
                s.registry_for(definition),
                s.HASH_KEY,
                timeout_s=300,
            )
            if plain.get("events"):
                plain["cpu_us_per_event"] = round(
                    (time.process_time() - plain_cpu0) / plain["events"] * 1e6
                )
        except Exception as exc:  # a proposal failing must not lose the figure
            plain = {"failed": repr(exc)[:500]}
        finally:
            s.drop_database(plain_db)
        s.log(f"pipeline: plain consumer worker (proposal) {plain.get('events_per_s')} events/s")
        judged_rate = _progress_rate(samples, 1, n)
        stored_rate = _progress_rate(samples, 2, n)
        baseline = max(kp["events_per_s"], ak["events_per_s"])
        return {
            "records": n,
            "partitions": settings.raw_partitions,
            "fill_seconds": round(fill_s, 1),
            "plain_kafka_python": kp,
            "plain_aiokafka": ak,
            "baseline_events_per_s": baseline,
            "baseline_client": "kafka-python"
            if kp["events_per_s"] >= ak["events_per_s"]
            else "aiokafka",
            "worker_judged": judged_rate,
            "worker_stored": stored_rate,
            "ratio_stored": s.ratio(stored_rate["events_per_s"], baseline),
            "ratio_judged": s.ratio(judged_rate["events_per_s"], baseline),
            "worker_cpu": cpu,
            "proposal_plain_consumer_worker": plain,
            "worker_log_tail": worker.tail(1500) if stored < n else "",
        }
    finally:
        s.delete_topics(bootstrap, prefix)
        s.drop_database(database)


def _progress_rate(samples: list[tuple[float, int, int]], col: int, n: int) -> dict[str, Any]:
    """Events/s between the first sample showing progress and the one reaching n (or the last)."""
    started = next(((row[0], row[col]) for row in samples if row[col] > 0), None)
    if started is None:
        return {"events": 0, "seconds": 0.0, "events_per_s": 0, "complete": False}
    t_first, v_first = started
    t_last, v_last = samples[-1][0], samples[-1][col]
    for row in samples:
        if row[col] >= n:
            t_last, v_last = row[0], row[col]
            break
    span = t_last - t_first
    return {
        "events": v_last - v_first,
        "seconds": round(span, 2),
        "events_per_s": round((v_last - v_first) / span) if span > 0 else 0,
        "complete": v_last >= n,
        "startup_seconds": round(t_first, 1),
    }


# -- embedded ------------------------------------------------------------------------------------


def embedded(quick: bool, work: Path) -> dict[str, Any]:
    from core.judge import JudgeState, judge
    from eventlog.file_log import FileLog
    from eventlog.offsets import OffsetStore
    from schemas.events import SubmissionReceived, decode_event
    from storage.chdb_store import ChdbStore
    from stream_processors.embedded import EmbeddedProcessor

    n = 20_000 if quick else 100_000
    definition = s.bench_definition()
    registry = s.registry_for(definition)
    run_tag = s.tag()
    records = _records(definition, n, f"emb{run_tag}")
    raw = FileLog(work / "raw", fsync=False)
    try:
        raw.append_many_sync(records)
        del records
        # Baseline: what judging alone costs (decode + both judging steps), nothing stored.
        state = JudgeState.empty()
        t = time.perf_counter()
        position = 0
        while position < n:
            batch = raw.read(position, 5000)
            for record in batch:
                event = decode_event(record.value)
                assert isinstance(event, SubmissionReceived)
                judge(event, f"0:{record.offset}", registry, state, s.HASH_KEY)
            position = batch[-1].offset + 1
        judge_only_s = time.perf_counter() - t

        store = ChdbStore(work / "chdb")
        store.migrate()
        processor = EmbeddedProcessor(
            raw,
            OffsetStore(work / "offsets.json"),
            store,
            registry,
            hash_key=s.HASH_KEY,
            batch_rows=5000,
        )
        batch_times = []
        t = time.perf_counter()
        while processor.position < n:
            b = time.perf_counter()
            processor.process_batch()
            batch_times.append(time.perf_counter() - b)
        processor_s = time.perf_counter() - t
        stored = store._execute("SELECT count() FROM submissions")[0][0]
        store.close()
    finally:
        raw.close()
    judge_rate = n / judge_only_s
    proc_rate = n / processor_s
    return {
        "records": n,
        "judge_only_events_per_s": round(judge_rate),
        "processor_events_per_s": round(proc_rate),
        "ratio": s.ratio(proc_rate, judge_rate),
        "processor_batch_ms": s.summary_ms(batch_times),
        "rows_stored": int(stored),
    }


def run(quick: bool, work: Path, only: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    parts = {"embedded": embedded, "distributed": distributed}
    for name, fn in parts.items():
        if only and name != only:
            continue
        try:
            out[name] = fn(quick, work)
        except s.BenchUnavailable as exc:
            out[name] = {"unavailable": str(exc)}
        except Exception as exc:
            s.log(f"pipeline {name} failed: {exc!r}")
            out[name] = {"failed": repr(exc)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["distributed", "embedded"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        text = json.dumps(run(args.quick, Path(tmp), args.only), indent=2)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
