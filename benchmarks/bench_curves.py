"""How cost grows with the campaign (issue 20): three curves, each over one stack or store that
is started (or filled) once and then pushed further.

  freshness   e2e freshness (202 -> counted in the unit leaderboard) p50/p95 at each of
              `--rates` sheets/s, embedded `serve` and the distributed stack (2 collectors,
              2 workers, api, Kafka, ClickHouse), with the cores each process used over the load
              (CPU seconds / wall seconds); the stacks, the probe and the load are
              benchmarks/bench_e2e.py's. Between two rates the stack drains (a probe is seen).
  queries     leaderboard, status and the regional mix p95 (benchmarks/bench_queries.py's
              measurement) at each of `--sizes` sheets, on chDB and on the ClickHouse server:
              one store grown from size to size (INSERT ... SELECT of the next rows, 1% of them
              under review decisions, then live verdicts through insert_judged), never refilled.
  cpu         CPU per sheet, end to end, of each runtime: a fixed load (`--cpu-rate` sheets/s,
              default 250, for `--cpu-seconds`, default 60) with one display screen on /live,
              every process's own CPU (/proc/<pid>/stat utime+stime, reaped children included)
              from just before the load to when every sheet is counted, divided by the sheets
              answered 202. Also the stack's idle cores with the screen connected, for a fixed
              + per-sheet split.

docs/capacity.md's last section is computed from this report (benchmarks/capacity.py).

    python -m benchmarks.bench_curves [--quick] [--only freshness,queries,cpu]
        [--stacks embedded,distributed] [--rates 250,500,1000,2000] [--seconds S]
        [--sizes 1000000,10000000,30000000] [--stores chdb,server]
        [--cpu-rate R] [--cpu-seconds S] [--out FILE]

Full length (the defaults), estimated on 2 cores: freshness ~15-25 min (the overloaded rates
drain), cpu ~5 min, queries ~70 min (per store: ~17 min of fill to 30 M, ~15 min of queries).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks import bench_e2e as e2e
from benchmarks import bench_queries as bq
from benchmarks import support as s

PARTS = ("freshness", "queries", "cpu")
STACKS = ("embedded", "distributed")
STORES = ("chdb", "server")


@dataclass(frozen=True)
class Lengths:
    rates: tuple[int, ...]  # sheets/s, one freshness step each
    seconds: float  # load per rate
    sizes: tuple[int, ...]  # sheets stored, one query step each
    cpu_rate: int
    cpu_seconds: float
    repeat: int  # queries timed per kind and size
    live_rows: int  # verdicts through insert_judged after each fill


# CPU per sheet at 250/s: the peak hour of docs/capacity.md's campaign (10.8 M sheets over 10
# days, 20x the mean), so the plan reads a figure measured at the rate it plans for.
FULL = Lengths((250, 500, 1000, 2000), 60.0, (1_000_000, 10_000_000, 30_000_000), 250, 60.0,
               200, 100_000)
QUICK = Lengths((250, 1000), 10.0, (100_000, 500_000), 500, 10.0, 30, 20_000)
FRESH_P95_MS = 2000.0  # the freshness floor a rate must keep to count as held
# The queries' baselines (the same answers from the verdicts, a full scan each: ~10-50 s apiece
# at 10 M on 2 cores) run twice after a warm-up, not bench_queries' 5-10 times: at 30 M they
# would otherwise take most of an hour per store. They are there for the same-rows check.
BASELINE_REPEAT = 2
CAMPAIGN = "2026"


def stack_for(name: str, work: Path) -> contextlib.AbstractContextManager[e2e.Stack]:
    if name == "embedded":
        return e2e.embedded_stack(work)
    return e2e.distributed_stack(work, workers=e2e.DISTRIBUTED_WORKERS)


def groups_of(stack: e2e.Stack) -> dict[str, Callable[[], Iterable[int]]]:
    """Each process of the stack (its tree), and the services the distributed one uses."""
    groups: dict[str, Callable[[], Iterable[int]]] = {r: stack.pids(r) for r in stack.procs}
    if stack.name == "distributed":
        groups |= {"kafka_broker": s.kafka_pids, "clickhouse": s.clickhouse_pids}
    return groups


def drain(stack: e2e.Stack) -> float:
    """Seconds until a fresh probe is counted: the backlog of the last load is gone."""
    t = time.monotonic()
    for _ in range(10):  # each attempt waits 30 s at most for its probes
        if not e2e.Prober(stack, f"d{s.tag()}").run_for(0.5)["lower_bound"]:
            break
    return round(time.monotonic() - t, 1)


# -- freshness -----------------------------------------------------------------------------------


def freshness(stack: e2e.Stack, bodies: Path, rates: Iterable[int], seconds: float
              ) -> dict[str, Any]:
    idle = e2e.Prober(stack, f"i{s.tag()}").run_for(min(10.0, seconds))
    s.log(f"curves {stack.name}: idle freshness p95 {idle['p95_ms']} ms")
    steps: list[dict[str, Any]] = []
    for rate in rates:
        meter = s.CpuMeter(groups_of(stack))
        fresh, wrk = e2e.loaded(stack, bodies, seconds, rate, on_start=meter.__enter__)
        wrk_s = wrk.get("cpu_s", 0.0) * seconds / max(1.0, wrk.get("duration_us", 1e6) / 1e6)
        cpu = meter.stop({"wrk": wrk_s})
        stack.check()
        drained = drain(stack)
        s.log(f"curves {stack.name} at {rate}/s: achieved {wrk.get('ok_rps')}/s, p50 "
              f"{fresh['p50_ms']} ms, p95 {fresh['p95_ms']} ms; drained in {drained} s")
        steps.append({"rate": rate, "achieved_rps": wrk.get("ok_rps"),
                      "non_2xx": wrk.get("non_2xx"), "wrk_error": wrk.get("error"),
                      "loaded": fresh, "cpu": cpu, "drain_s": drained})
    held = [int(x["rate"]) for x in steps if held_rate(x)]
    return {"idle": idle, "steps": steps, "seconds": seconds, "notes": stack.notes,
            "highest_rate_within_p95_2s": max(held) if held else None}


def held_rate(step: dict[str, Any]) -> bool:
    """A rate counts as held when its probes' p95 is within 2 s (none lost) and the load
    reached 95% of the rate asked."""
    lo = step["loaded"]
    return (lo["p95_ms"] <= FRESH_P95_MS and not lo.get("lower_bound")
            and (step.get("achieved_rps") or 0) >= 0.95 * step["rate"])


# -- CPU per sheet -------------------------------------------------------------------------------


class LiveScreen:
    """One display screen on /live, read in a thread until closed; counts the events."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.sock = socket.create_connection((parts.hostname or s.HOST, parts.port or 80), 10)
        self.sock.settimeout(None)  # a quiet stream sends a keep-alive only every 15 s
        self.sock.sendall(f"GET /v1/campaigns/{CAMPAIGN}/live HTTP/1.1\r\nHost: {s.HOST}\r\n"
                          "Accept: text/event-stream\r\n\r\n".encode())
        self.events = 0
        self.error: str | None = None
        self._thread = threading.Thread(target=self._read, daemon=True, name="live-screen")
        self._thread.start()

    def _read(self) -> None:
        tail = b""
        try:
            while chunk := self.sock.recv(65536):
                seen = tail + chunk
                self.events += seen.count(b"event: ")
                tail = seen[-6:]
        except OSError as exc:
            self.error = repr(exc)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(5)


def _cpu(groups: dict[str, Callable[[], Iterable[int]]]) -> dict[str, float]:
    """CPU seconds per group: utime+stime of every process of its tree, reaped children's
    (cutime+cstime) included."""
    return {name: sum(s.cpu_seconds(p, children=True) for p in set(get()))
            for name, get in groups.items()}


def _counted(url: str) -> int:
    import httpx

    totals = httpx.get(f"{url}/v1/campaigns/{CAMPAIGN}", timeout=10).json()["totals"]
    return int(totals["valid"]) + int(totals["rejected"]) + int(totals["test"])


def _until_counted(stack: e2e.Stack, timeout_s: float = 180.0) -> float:
    """Seconds until every sheet taken is counted: a probe posted after the load is seen, then
    the campaign's totals hold still for 3 s (not every generated sheet counts towards a unit,
    so the totals cannot be waited for to reach the number sent)."""
    t = time.monotonic()
    drain(stack)
    last, still_since = -1, time.monotonic()
    while time.monotonic() - t < timeout_s:
        now = _counted(stack.read_url)
        if now != last:
            last, still_since = now, time.monotonic()
        elif time.monotonic() - still_since >= 3.0:
            break
        time.sleep(0.25)
    return round(time.monotonic() - t, 1)


def cpu_per_sheet(stack: e2e.Stack, bodies: Path, rate: int, seconds: float) -> dict[str, Any]:
    groups = groups_of(stack)
    screen = LiveScreen(stack.read_url)
    try:
        warm = s.run_wrk(stack.post_url, threads=e2e.LOAD_THREADS,
                         connections=e2e.LOAD_CONNECTIONS, seconds=5,
                         script=s.WRK_DIR / "submit.lua",
                         env={"BENCH_BODIES": str(bodies), "BENCH_RATE": str(rate),
                              "BENCH_THREADS": str(e2e.LOAD_THREADS)})
        drain(stack)
        idle_s = min(10.0, seconds)
        before = _cpu(groups)
        time.sleep(idle_s)
        idle = {k: round((v - before[k]) / idle_s, 3) for k, v in _cpu(groups).items()}
        base = _counted(stack.read_url)
        events0, t0, before = screen.events, time.monotonic(), _cpu(groups)
        wrk = s.run_wrk(stack.post_url, threads=e2e.LOAD_THREADS,
                        connections=e2e.LOAD_CONNECTIONS, seconds=seconds,
                        script=s.WRK_DIR / "submit.lua",
                        env={"BENCH_BODIES": str(bodies), "BENCH_RATE": str(rate),
                             "BENCH_THREADS": str(e2e.LOAD_THREADS)})
        drained = _until_counted(stack)
        after, wall = _cpu(groups), time.monotonic() - t0
        counted = _counted(stack.read_url) - base
        stack.check()
    finally:
        screen.close()
    sheets = int(wrk["ok"])
    used = {k: after[k] - before[k] for k in after}
    services = {"kafka_broker", "clickhouse"}
    product = {k: v for k, v in used.items() if k not in services | {"harness"}}
    per = {k: round(v / sheets * 1e6, 1) for k, v in used.items()} if sheets else {}
    idle_product = sum(v for k, v in idle.items() if k not in services | {"harness"})
    idle_services = sum(v for k, v in idle.items() if k in services)
    product_s, services_s = sum(product.values()), sum(used[k] for k in services if k in used)
    out = {
        "rate": rate, "seconds": seconds, "sheets": sheets, "counted": counted,
        "non_2xx": wrk["non_2xx"], "achieved_rps": wrk["ok_rps"], "wall_s": round(wall, 1),
        "drain_s": drained, "cpu_s": {k: round(v, 2) for k, v in used.items()},
        "us_per_sheet": per,
        "product_us_per_sheet": round(product_s / sheets * 1e6, 1) if sheets else None,
        "services_us_per_sheet": round(services_s / sheets * 1e6, 1) if sheets else None,
        "idle_cores": idle, "idle_product_cores": round(idle_product, 3),
        "idle_services_cores": round(idle_services, 3),
        # What a sheet adds above the idle stack (idle cores over the same wall taken out).
        "marginal_us_per_sheet": round(
            (product_s + services_s - (idle_product + idle_services) * wall) / sheets * 1e6, 1)
        if sheets else None,
        "wrk_cpu_s": wrk.get("cpu_s"), "warm_ok": warm["ok"],
        "live_events": screen.events - events0, "live_error": screen.error,
        "notes": stack.notes,
    }
    s.log(f"curves cpu {stack.name}: {sheets:,} sheets, product {out['product_us_per_sheet']} "
          f"µs/sheet, services {out['services_us_per_sheet']} µs/sheet ({per})")
    return out


# -- queries -------------------------------------------------------------------------------------


@contextlib.contextmanager
def grown_store(kind: str, work: Path) -> Iterator[tuple[Any, Callable[[str], object],
                                                         Callable[[], None]]]:
    """(store, execute, settle): a chDB store in `work`, or a fresh server database."""
    from storage import open_store

    if kind == "chdb":
        from storage.chdb_store import ChdbStore

        embedded = ChdbStore(work / "chdb-curve")
        try:
            yield embedded, embedded._execute, lambda: None
        finally:
            embedded.close()
        return
    database = f"bench_qc_{s.tag()}"
    store = open_store(f"{s.clickhouse_base()}/{database}")
    client = s.clickhouse_client(database)

    def settle() -> None:  # merges the live batches trigger, at most SETTLE_S (as bench_queries)
        t = time.monotonic()
        while time.monotonic() - t < bq.SETTLE_S and client.execute(
                f"SELECT count() FROM system.merges WHERE database = '{database}'")[0][0]:
            time.sleep(2)

    try:
        yield store, client.execute, settle
    finally:
        store.close()
        client.disconnect()
        s.drop_database(database)


def query_curve(kind: str, sizes: Iterable[int], repeat: int, live_rows: int, work: Path
                ) -> dict[str, Any]:
    definition = s.bench_definition()
    steps = []
    with grown_store(kind, work) as (store, execute, settle):
        store.migrate()
        have = 0
        for size in sorted(sizes):
            t = time.perf_counter()
            for start in range(have, size, bq.CHUNK):
                execute(bq.fill_sql(definition, start, min(bq.CHUNK, size - start)))
            for statement in bq.review_fill_sql(size - have, (size - have) // 100, start=have):
                execute(statement)
            fill_s = time.perf_counter() - t
            verdicts = s.judged_rows(definition, live_rows, f"live{s.tag()}")
            for i in range(0, len(verdicts), 5000):
                store.insert_judged(verdicts[i : i + 5000])
            settle()
            s.log(f"curves queries {kind}: {size:,} rows (+{size - have:,} in {fill_s:.0f} s)")
            result = bq.measure(store, definition, size, repeat, baseline_repeat=BASELINE_REPEAT)
            steps.append({"rows": size, "fill_seconds": round(fill_s, 1),
                          "live_rows_streamed": live_rows} | result)
            have = size
    return {"steps": steps}


def query_p95(step: dict[str, Any]) -> dict[str, float]:
    """The figures of one size: leaderboard (worst level), status, each regional query."""
    out = {"leaderboard": max(step[f"leaderboard_{lv}"]["p95_ms"]
                              for lv in ("unit", "province", "work_region")),
           "status": step["status"]["p95_ms"]}
    for name, x in (step.get("regional") or {}).items():
        out[name] = x["figure"]["p95_ms"]
    return out


# -- the run -------------------------------------------------------------------------------------


def _guarded(label: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return fn()
    except s.BenchUnavailable as exc:
        return {"unavailable": str(exc)}
    except Exception as exc:
        s.log(f"curves {label} failed: {exc!r}")
        return {"failed": repr(exc)[:3000]}


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    given = {k: getattr(args, k) for k in ("rates", "seconds", "sizes", "cpu_rate",
                                           "cpu_seconds") if getattr(args, k)}
    n = replace(QUICK if args.quick else FULL, **given)
    out: dict[str, Any] = {"settings": asdict(n) | {
        "probe_every_s": e2e.PROBE_EVERY_S, "poll_every_s": e2e.POLL_EVERY_S,
        "freshness_floor_ms": FRESH_P95_MS, "distributed_workers": e2e.DISTRIBUTED_WORKERS},
        "machine": s.machine()}
    bodies = s.write_body_templates(work / "bodies.txt", s.bench_definition(), 4000)
    if {"freshness", "cpu"} & set(args.only):
        out["freshness"], out["cpu"] = {}, {}
        for name in args.stacks:
            def both(name: str = name) -> dict[str, Any]:
                with stack_for(name, work) as stack:
                    got: dict[str, Any] = {}
                    if "freshness" in args.only:
                        got["freshness"] = _guarded(f"freshness {name}", lambda: freshness(
                            stack, bodies, n.rates, n.seconds))
                    if "cpu" in args.only:
                        drain(stack)
                        got["cpu"] = _guarded(f"cpu {name}", lambda: cpu_per_sheet(
                            stack, bodies, n.cpu_rate, n.cpu_seconds))
                    return got

            got = _guarded(name, both)
            for part in ("freshness", "cpu"):
                if part in args.only:
                    out[part][name] = got.get(part, got)
        out = {k: v for k, v in out.items() if v != {}}
    if "queries" in args.only:
        out["queries"] = {}
        for kind in args.stores:
            def grow(kind: str = kind) -> dict[str, Any]:
                return query_curve(kind, n.sizes, n.repeat, n.live_rows, work)

            out["queries"][kind] = _guarded(f"queries {kind}", grow)
    return out


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(","))


def _names(allowed: tuple[str, ...]) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(x.strip() for x in text.split(","))
        if set(names) - set(allowed):
            raise argparse.ArgumentTypeError(f"choose from {','.join(allowed)}")
        return names

    return parse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", type=_names(PARTS), default=PARTS)
    parser.add_argument("--stacks", type=_names(STACKS), default=STACKS)
    parser.add_argument("--stores", type=_names(STORES), default=STORES)
    parser.add_argument("--rates", type=_ints, help="sheets/s, comma-separated")
    parser.add_argument("--seconds", type=float, help="load per rate")
    parser.add_argument("--sizes", type=_ints, help="store sizes (sheets), comma-separated")
    parser.add_argument("--cpu-rate", type=int)
    parser.add_argument("--cpu-seconds", type=float)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-curves-") as tmp:
        text = json.dumps(run(args, Path(tmp)), indent=2)
    s.emit(text, args.out)


if __name__ == "__main__":
    main()
