"""The ceilings the Kafka-mode collector's figure reads against, measured in the same run
(issue 20 item 5): what the broker takes from Kafka's own Java producer, and what the mandated
client, kafka-python, sends in a plain loop, beside the collector's requests/s.

  java_producer           org.apache.kafka.tools.ProducerPerformance (kafka-tools at the broker's
                          version, `make bench-install`), acks=all, records of the raw log's median
                          size, idempotent, the collector's linger.ms and batch.size; flat out
  java_producer_defaults  the same with the Java client's own linger.ms and batch.size
  kafka_python_loop       one process: kafka-python with the collector's producer settings
                          (eventlog.kafka_log.producer_config), the raw records themselves (key:
                          submission_id), at most LOOP_WINDOW sends unacknowledged
  kafka_python_loop_256   the same, at most 256 unacknowledged: wrk's connections, the collector's
                          concurrency in benchmarks/bench_collector.py
  collector_kafka_cli_1w  `survey-ingest collector` (1 and 2 processes) under wrk, as
  collector_kafka_cli_2w  bench_collector measures it, with the same bodies

Each producer writes to a topic of its own with the raw topic's partitions (under the run's
prefix, deleted at the end). The client's CPU (from its rusage) and the broker's are recorded
with each figure, and the load average.

    python -m benchmarks.bench_ceilings [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import bench_collector as bc
from benchmarks import support as s

LOOP_WINDOW = 10_000
WRK_WINDOW = bc.WRK_CONNECTIONS
SAMPLE_RECORDS = 4000
JAVA_CLASS = "org.apache.kafka.tools.ProducerPerformance"
# "1000000 records sent, 98765.4 records/sec (95.12 MB/sec), 250.1 ms avg latency, 900.0 ms max
# latency, 230 ms 50th, 600 ms 95th, 800 ms 99th, 890 ms 99.9th."
JAVA_SUMMARY = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th"
)


def raw_records(definition: Any, n: int) -> list[tuple[bytes, bytes]]:
    """(key, value) as the collector appends them: submission_id, the received record."""
    from core.privacy import keyed_hash

    now = dt.datetime.now(dt.UTC)
    out = []
    for i, body in enumerate(s.unique_bodies(definition, n, s.tag())):
        client = keyed_hash(s.HASH_KEY, f"10.{i % 250}.{i % 199}.{i % 251}")
        network = keyed_hash(s.HASH_KEY, f"10.{i % 250}.{i % 199}.0/24")
        out.append((body["submission_id"].encode(),
                    s.received_record(body, now, client, network)))
    return out


def _create_topic(bootstrap: str, name: str, partitions: int) -> None:
    from kafka.admin import NewTopic

    from runtime.distributed.topics import admin_client

    admin = admin_client(bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()


def _run_child(args: list[str], timeout_s: float) -> tuple[str, float, float]:
    """Runs a client to the end; its output, wall seconds, and CPU seconds (from its rusage)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s, cwd=s.ROOT)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} exited {done.returncode}: "
                           f"{(done.stdout + done.stderr)[-2000:]}")
    return done.stdout, wall, cpu


def measure_client(name: str, args: list[str], timeout_s: float,
                   parse: Any) -> dict[str, Any]:
    meter = s.CpuMeter({"kafka_broker": s.kafka_pids}).__enter__()
    out, wall, cpu = _run_child(args, timeout_s)
    meter.stop({"client": cpu})
    result: dict[str, Any] = parse(out)
    result |= {"wall_s": round(wall, 1), "client_cpu_s": round(cpu, 1), "cpu": meter.result}
    s.log(f"{name}: {result['records_per_s']:,.0f} records/s, client "
          f"{meter.result['cores'].get('client')} cores, broker "
          f"{meter.result['cores'].get('kafka_broker')} cores, load {meter.result['loadavg_1m']}")
    return result


def java_producer(bootstrap: str, topic: str, records: int, size: int,
                  collector_settings: bool) -> dict[str, Any]:
    props = [f"bootstrap.servers={bootstrap}", "acks=all", "enable.idempotence=true"]
    if collector_settings:
        from eventlog.kafka_log import producer_config

        config = producer_config(bootstrap)
        props += [f"linger.ms={config['linger_ms']}", f"batch.size={config['batch_size']}"]
    args = ["java", "-Xmx512m", "-cp", s.kafka_tools_classpath(), JAVA_CLASS,
            "--topic", topic, "--num-records", str(records), "--record-size", str(size),
            "--throughput", "-1", "--producer-props", *props]

    def parse(out: str) -> dict[str, Any]:
        found = JAVA_SUMMARY.findall(out)
        if not found:
            raise RuntimeError(f"no summary from ProducerPerformance: {out[-1500:]}")
        sent, rps, mb, avg, mx, p50, p95, p99 = found[-1]
        return {"records": int(sent), "records_per_s": round(float(rps)),
                "mb_per_s": float(mb), "avg_latency_ms": float(avg),
                "max_latency_ms": float(mx), "p50_ms": int(p50), "p95_ms": int(p95),
                "p99_ms": int(p99), "producer_props": props[1:]}

    return measure_client("java_producer" + ("" if collector_settings else "_defaults"),
                          args, 600, parse)


def kafka_python_loop(bootstrap: str, topic: str, records_file: Path, window: int,
                      repeat: int) -> dict[str, Any]:
    args = [s.PY, "-m", "benchmarks.bench_ceilings", "--send-loop", bootstrap, topic,
            str(records_file), str(window), str(repeat)]

    def parse(out: str) -> dict[str, Any]:
        return dict(json.loads(out.strip().splitlines()[-1]))

    return measure_client(f"kafka_python_loop (window {window})", args, 600, parse)


def send_loop(bootstrap: str, topic: str, records_file: Path, window: int, repeat: int) -> None:
    """In a child process: every record sent `repeat` times (fresh keys each pass), at most
    `window` unacknowledged; prints one JSON line."""
    from collections import deque

    from kafka import KafkaProducer

    from eventlog.kafka_log import producer_config

    pairs = [(bytes.fromhex(k), bytes.fromhex(v))
             for k, v in (line.split() for line in records_file.read_text().splitlines())]
    producer = KafkaProducer(**producer_config(bootstrap))
    if not producer.partitions_for(topic):
        raise SystemExit(f"topic {topic} does not exist")
    pending: deque[Any] = deque()
    latencies: list[float] = []
    failed = 0

    def settle(sent: Any, at: float) -> None:
        nonlocal failed
        try:
            sent.get(timeout=30)
            latencies.append(time.perf_counter() - at)
        except Exception:
            failed += 1

    started = time.perf_counter()
    for n in range(repeat):
        prefix = f"{n}-".encode()
        for key, value in pairs:
            if len(pending) >= window:
                settle(*pending.popleft())
            pending.append((producer.send(topic, key=prefix + key, value=value),
                            time.perf_counter()))
    while pending:
        settle(*pending.popleft())
    elapsed = time.perf_counter() - started
    producer.close(timeout=10)
    total = len(pairs) * repeat
    latencies.sort()
    print(json.dumps({
        "records": total, "failed": failed, "window": window,
        "records_per_s": round((total - failed) / elapsed),
        "mb_per_s": round(sum(len(v) for _, v in pairs) * repeat / elapsed / 1e6, 2),
        # From send() to the ack being taken: includes waiting behind older records.
        "p50_ms": round(s.percentile(latencies, 50) * 1e3, 1),
        "p99_ms": round(s.percentile(latencies, 99) * 1e3, 1),
    }), flush=True)


def run(quick: bool, work: Path) -> dict[str, Any]:
    java_records = 200_000 if quick else 1_000_000
    loop_repeat = 10 if quick else 40  # passes over the SAMPLE_RECORDS records
    seconds, warmup, attempts = (5.0, 2.0, 1) if quick else (15.0, 3.0, 2)
    setup = bc.Setup(work, quick)
    result: dict[str, Any] = {"settings": {}, "ceilings": {}, "collector": {}, "unavailable": {}}
    try:
        bootstrap = setup.bootstrap()
        from schemas.settings import Settings

        partitions = Settings().raw_partitions
        records = raw_records(setup.definition, SAMPLE_RECORDS)
        sizes = [len(v) for _, v in records]
        size = int(statistics.median(sizes))
        records_file = work / "records.hex"
        records_file.write_text("".join(f"{k.hex()} {v.hex()}\n" for k, v in records))
        result["settings"] = {
            "partitions": partitions, "record_bytes_median": size,
            "record_bytes_range": [min(sizes), max(sizes)], "key_bytes": len(records[0][0]),
            "java_records": java_records, "loop_records": SAMPLE_RECORDS * loop_repeat,
            "loop_window": LOOP_WINDOW, "wrk_window": WRK_WINDOW,
            "collector_wrk": f"-t{bc.WRK_THREADS} -c{bc.WRK_CONNECTIONS} -d{seconds:g}s",
        }
        ceilings = result["ceilings"]
        runs: tuple[tuple[str, Callable[[str], dict[str, Any]]], ...] = (
            ("java_producer", lambda t: java_producer(bootstrap, t, java_records, size, True)),
            ("java_producer_defaults",
             lambda t: java_producer(bootstrap, t, java_records, size, False)),
            ("kafka_python_loop",
             lambda t: kafka_python_loop(bootstrap, t, records_file, LOOP_WINDOW, loop_repeat)),
            ("kafka_python_loop_256",
             lambda t: kafka_python_loop(bootstrap, t, records_file, WRK_WINDOW, loop_repeat)),
        )
        for name, measure in runs:
            topic = f"{setup.prefix}.{name}"
            try:
                _create_topic(bootstrap, topic, partitions)
                ceilings[name] = measure(topic)
            except s.BenchUnavailable as exc:
                result["unavailable"][name] = str(exc)
                s.log(f"{name} unavailable: {exc}")
            except Exception as exc:
                result["unavailable"][name] = f"failed: {exc}"
                s.log(f"{name} failed: {exc}")
        for target in (setup.kafka_cli(1), setup.kafka_cli(2)):
            try:
                result["collector"][target.name] = bc.measure(
                    target, setup, seconds, warmup, attempts)
            except Exception as exc:
                result["unavailable"][target.name] = f"{type(exc).__name__}: {exc}"
                s.log(f"{target.name}: {exc}")
    finally:
        setup.cleanup()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--send-loop", nargs=5, help=argparse.SUPPRESS,
                        metavar=("BOOTSTRAP", "TOPIC", "RECORDS", "WINDOW", "REPEAT"))
    args = parser.parse_args()
    if args.send_loop:
        bootstrap, topic, records, window, repeat = args.send_loop
        send_loop(bootstrap, topic, Path(records), int(window), int(repeat))
        return
    with tempfile.TemporaryDirectory(prefix="bench-ceilings-") as tmp:
        result = run(args.quick, Path(tmp))
    s.emit(json.dumps(result, indent=2), args.out)
    if not result["ceilings"] and not result["collector"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
