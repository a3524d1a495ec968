"""The read side under a crowd (issue 23): public reads as a share of `/healthz` on the same
process, req/s and p99 against connections, and many display screens connecting at once.

Against one `survey-ingest serve` process (embedded runtime: chDB), the store filled first with
`--sheets` judged sheets of the example campaign (135 units), optionally with answer sheets
coming in at `--ingest-rate` per second (wrk, submit.lua, paced) while it reads:

  routes      wrk -t2 -c64 on /healthz, the leaderboard (unit, province, work_region), pacing,
              the campaign view and the answering page; req/s, p99, share of /healthz
  sweep       the unit leaderboard and /healthz at 1, 16, 64 and 256 connections
  live        `--screens` SSE connections opened at once: time until each has its first event;
              the server's RSS and CPU seconds over the burst
  store       read-side store queries during the whole run (survey_read_store_queries_total)
  nginx       the unit leaderboard through infra/nginx (micro-cache 1 s) next to nginx's own
              fixed answer (/nginx-health), 64 connections

    python -m benchmarks.bench_read [--quick] [--out FILE] [--sheets N] [--screens N]
                                    [--ingest-rate R] [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from benchmarks import support as s

READ_SCRIPT = s.WRK_DIR / "read.lua"
SUBMIT_SCRIPT = s.WRK_DIR / "submit.lua"
SWEEP = (1, 16, 64, 256)


def fill_store(data: Path, definition: Any, sheets: int) -> None:
    """`sheets` verdicts of generated answer sheets straight into the chDB the server opens."""
    from storage import open_store

    batch = 20_000
    with open_store(f"chdb://{data / 'chdb'}") as store:
        store.migrate()
        done = 0
        while done < sheets:
            n = min(batch, sheets - done)
            store.insert_judged(s.judged_rows(definition, n, f"r{done}"))
            done += n
            s.log(f"store filled: {done}/{sheets}")


@contextmanager
def serving(
    work: Path, definition: Any, sheets: int, source: Path = s.ROOT
) -> Iterator[tuple[str, s.Proc]]:
    data = work / "data"
    fill_store(data, definition, sheets)
    port = s.free_port()
    proc = s.Proc(
        "serve", [*s.CLI, "serve", "--port", str(port), "--data-dir", str(data)],
        work / "serve.log",
        env={"SURVEY_ADMIN_TOKEN": s.ADMIN_TOKEN, "SURVEY_HASH_KEY": s.HASH_KEY}, cwd=source,
    )
    url = f"http://{s.HOST}:{port}"
    try:
        s.wait_until("serve ready", lambda: proc.check() and s.http_status(url + "/readyz") == 200,
                     180, every_s=0.2)
        r = httpx.put(f"{url}/v1/admin/campaigns/{definition.campaign}",
                      json=s.definition_json(definition),
                      headers={"authorization": f"Bearer {s.ADMIN_TOKEN}"}, timeout=60)
        r.raise_for_status()
        yield url, proc
    finally:
        proc.stop(60)


def wrk(url: str, connections: int, seconds: float) -> dict[str, Any]:
    r = s.run_wrk(url, threads=min(2, connections), connections=connections, seconds=seconds,
                  script=READ_SCRIPT)
    return {"rps": r["ok_rps"], "p50_ms": r["p50_us"] / 1000, "p99_ms": r["p99_us"] / 1000,
            "non_2xx": r["non_2xx"], "errors": r["connect_errors"] + r["read_errors"]
            + r["write_errors"] + r["timeouts"], "wrk_cpu_s": r["cpu_s"]}


def routes(definition: Any) -> dict[str, str]:
    c = definition.campaign
    code = next(lk.code for lk in definition.links if not lk.revoked)
    return {
        "healthz": "/healthz",
        "leaderboard_unit": f"/v1/campaigns/{c}/leaderboard?level=unit",
        "leaderboard_province": f"/v1/campaigns/{c}/leaderboard?level=province",
        "leaderboard_work_region": f"/v1/campaigns/{c}/leaderboard?level=work_region",
        "pacing": f"/v1/campaigns/{c}/pacing",
        "campaign_view": f"/v1/campaigns/{c}",
        "answering_page": f"/s/{code}",
    }


def store_queries(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    found = re.search(r"^survey_read_store_queries_total ([0-9.e+]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else float("nan")


async def _screen(host: str, port: int, path: str, sent: list[float]) -> float:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
                 .encode())
    await writer.drain()
    sent.append(time.perf_counter() - started)
    buffer = b""
    while b"event: snapshot" not in buffer or not buffer.rstrip(b"\r").endswith(b"\n\n"):
        chunk = await reader.read(65536)
        if not chunk:
            raise RuntimeError("stream closed before its first event")
        buffer += chunk
        if b"event: snapshot" in buffer and b"\n\n" in buffer.split(b"event: snapshot", 1)[1]:
            break
    elapsed = time.perf_counter() - started
    writer.close()
    return elapsed


@contextmanager
def nginx_in_front(url: str, work: Path) -> Iterator[str]:
    """infra/nginx/start.sh (the stack's balancer, micro-cache 1 s) in front of `url`."""
    port = s.free_port()
    env = {**os.environ, "SURVEY_NGINX_PORT": str(port),
           "SURVEY_NGINX_UPSTREAMS": url.removeprefix("http://"), "SURVEY_NGINX_WORKERS": "1",
           "SURVEY_INFRA_DATA": str(work / "infra"), "SURVEY_INFRA_TIMEOUT": "30"}
    script = s.ROOT / "infra" / "nginx"
    started = subprocess.run(["bash", str(script / "start.sh")], env=env, capture_output=True,
                             text=True, timeout=300)
    if started.returncode != 0:
        raise s.BenchUnavailable(f"nginx did not start: {started.stderr[-2000:]}")
    try:
        yield f"http://{s.HOST}:{port}"
    finally:
        subprocess.run(["bash", str(script / "stop.sh"), "--wipe"], env=env,
                       capture_output=True, timeout=120)


def through_nginx(url: str, work: Path, paths: dict[str, str], seconds: float) -> dict[str, Any]:
    """The leaderboard through nginx's micro-cache next to nginx answering on its own (its
    /nginx-health: a fixed body, the ceiling of nginx itself here)."""
    with nginx_in_front(url, work) as front:
        httpx.get(front + paths["leaderboard_unit"], timeout=30)
        own = wrk(front + "/nginx-health", 64, seconds)
        lb = wrk(front + paths["leaderboard_unit"], 64, seconds)
        return {"nginx_own_answer": own, "leaderboard_unit": lb,
                "share_of_nginx_own": round(lb["rps"] / own["rps"], 3) if own["rps"] else None}


def live_burst(url: str, path: str, screens: int, proc: s.Proc) -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, screens + 256)), hard))
    host, port = s.HOST, int(url.rsplit(":", 1)[1])
    cpu_before, rss_before = s.cpu_seconds(proc.pid), s.rss_bytes(proc.pid)

    sent: list[float] = []

    async def burst() -> list[float | BaseException]:
        return list(await asyncio.gather(*(_screen(host, port, path, sent)
                                           for _ in range(screens)), return_exceptions=True))

    started = time.perf_counter()
    results = asyncio.run(burst())
    wall = time.perf_counter() - started
    times = sorted(r for r in results if isinstance(r, float))
    return {
        "screens": screens, "got_first_event": len(times),
        "failed": screens - len(times),
        "first_event_p50_s": round(s.percentile(times, 50), 3) if times else None,
        "first_event_p99_s": round(s.percentile(times, 99), 3) if times else None,
        "last_first_event_s": round(times[-1], 3) if times else None,
        "burst_wall_s": round(wall, 3),
        # When each request was written (connected and sent), from the burst's start: how much
        # of the wait is the one client opening its connections rather than the server.
        "request_sent_p50_s": round(s.percentile(sent, 50), 3) if sent else None,
        "request_sent_max_s": round(max(sent), 3) if sent else None,
        "server_cpu_s": round(s.cpu_seconds(proc.pid) - cpu_before, 2),
        "server_rss_mb_before": round(rss_before / 2**20, 1),
        "server_rss_mb_after": round(s.rss_bytes(proc.pid) / 2**20, 1),
    }


def run(quick: bool, sheets: int, screens: int, ingest_rate: int, seconds: float,
        source: Path = s.ROOT, sweep: bool = True, with_nginx: bool = True) -> dict[str, Any]:
    definition = s.bench_definition()
    out: dict[str, Any] = {"settings": {
        "quick": quick, "sheets_stored": sheets, "screens": screens, "ingest_rate": ingest_rate,
        "wrk": f"wrk -t2 -c64 -d{seconds:g}s -s benchmarks/wrk/read.lua (no Accept-Encoding)",
        "machine": s.machine(), "server_source": str(source),
    }}
    with tempfile.TemporaryDirectory(prefix="bench-read-") as tmp:
        work = Path(tmp)
        with serving(work, definition, sheets, source) as (url, proc):
            paths = routes(definition)
            ingest: subprocess.Popen[bytes] | None = None
            if ingest_rate:
                bodies = s.write_body_templates(work / "bodies.txt", definition, 4000)
                ingest = subprocess.Popen(
                    ["wrk", "-t1", "-c8", "-d3600s", "-s", str(SUBMIT_SCRIPT), url],
                    env={**os.environ, "BENCH_BODIES": str(bodies),
                         "BENCH_RATE": str(ingest_rate), "BENCH_THREADS": "1"},
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=s.WRK_DIR,
                )
            try:
                for path in paths.values():  # warm: first snapshot, first render
                    httpx.get(url + path, timeout=60)
                queries_before, t0 = store_queries(url), time.monotonic()
                measured: dict[str, Any] = {}
                health = [wrk(url + paths["healthz"], 64, seconds)]
                for name, path in paths.items():
                    if name != "healthz":
                        s.log(f"read: {name}")
                        measured[name] = wrk(url + path, 64, seconds)
                health.append(wrk(url + paths["healthz"], 64, seconds))
                base = sum(h["rps"] for h in health) / len(health)
                measured["healthz"] = health[0] | {"rps": round(base, 1),
                                                   "rounds_rps": [h["rps"] for h in health]}
                for m in measured.values():
                    m["share_of_healthz"] = round(m["rps"] / base, 3) if base else None
                out["routes_c64"] = measured
                by_connections: dict[str, Any] = {}
                for c in SWEEP if sweep else ():
                    s.log(f"sweep: {c} connections")
                    by_connections[str(c)] = {
                        "leaderboard_unit": wrk(url + paths["leaderboard_unit"], c, seconds),
                        "healthz": wrk(url + paths["healthz"], c, seconds),
                    }
                out["sweep"] = by_connections
                elapsed = time.monotonic() - t0
                queries = store_queries(url) - queries_before
                out["store"] = {"read_side_queries": queries, "seconds": round(elapsed, 1),
                                "queries_per_s": round(queries / elapsed, 2)}
                if with_nginx:
                    s.log("through nginx")
                    try:
                        out["nginx"] = through_nginx(url, work, paths, seconds)
                    except s.BenchUnavailable as exc:
                        out["nginx"] = {"unavailable": str(exc)}
            finally:
                if ingest is not None:
                    ingest.terminate()
                    ingest.wait(30)
            s.log(f"live: {screens} screens at once")
            out["live"] = live_burst(url, f"/v1/campaigns/{definition.campaign}/live", screens,
                                     proc)
    return out


def table(result: dict[str, Any]) -> str:
    lines = ["| route | req/s | p99 ms | share of /healthz |", "|---|---|---|---|"]
    for name, m in result["routes_c64"].items():
        lines.append(f"| {name} | {m['rps']:,.0f} | {m['p99_ms']:.1f} | {m['share_of_healthz']} |")
    lines += ["", "| connections | leaderboard req/s | p99 ms | /healthz req/s | p99 ms |",
              "|---|---|---|---|---|"]
    for c, m in result["sweep"].items():
        lb, h = m["leaderboard_unit"], m["healthz"]
        lines.append(f"| {c} | {lb['rps']:,.0f} | {lb['p99_ms']:.1f} | {h['rps']:,.0f} | "
                     f"{h['p99_ms']:.1f} |")
    ng = result.get("nginx", {})
    if "leaderboard_unit" in ng:
        lines += ["", f"through nginx: leaderboard {ng['leaderboard_unit']['rps']:,.0f} req/s "
                  f"(p99 {ng['leaderboard_unit']['p99_ms']:.1f} ms), nginx's own answer "
                  f"{ng['nginx_own_answer']['rps']:,.0f} req/s: {ng['share_of_nginx_own']}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (provisional figures)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--sheets", type=int)
    parser.add_argument("--screens", type=int)
    parser.add_argument("--ingest-rate", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--source", type=Path, default=s.ROOT,
                        help="the source tree the server runs from (e.g. a checkout of the code "
                        "before a change, for a comparison on the same machine)")
    parser.add_argument("--no-sweep", action="store_true")
    parser.add_argument("--no-nginx", action="store_true")
    args = parser.parse_args()
    quick = args.quick
    result = run(
        quick,
        sheets=args.sheets or (9_000 if quick else 1_000_000),
        screens=args.screens or (1_000 if quick else 10_000),
        ingest_rate=args.ingest_rate if args.ingest_rate is not None else (0 if quick else 2000),
        seconds=args.seconds or (4.0 if quick else 15.0),
        source=args.source, sweep=not args.no_sweep, with_nginx=not args.no_nginx,
    )
    s.log("\n" + table(result))
    s.emit(json.dumps(result, indent=2, ensure_ascii=False), args.out)


if __name__ == "__main__":
    main()
