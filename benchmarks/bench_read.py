"""The read side under a crowd (issue 23): public reads as a share of `/healthz` on the same
process, req/s and p99 against connections, and many display screens connecting at once.

Against one `survey-ingest serve` process (embedded runtime: chDB), the store filled first with
`--sheets` judged sheets of the example campaign (135 units), optionally with answer sheets
coming in at `--ingest-rate` per second (wrk, submit.lua, paced) while it reads:

  routes      wrk -t2 -c64 on /healthz, the leaderboard (unit, province, work_region), pacing,
              the campaign view and the answering page, without Accept-Encoding; the unit
              leaderboard again as a browser asks (compressed); req/s, p99, share of /healthz
  sweep       the unit leaderboard and /healthz at 1, 16, 64 and 256 connections
  live        `--screens` SSE connections opened at once: time until each has its first event;
              the server's RSS and CPU seconds over the burst; then (`--hold`, 60 s unless
              quick) all of them held open with the ingest running: the server's CPU and RSS
              and the `counts` events each screen read (one a tick when counts move)
  store       read-side store queries during the whole run (survey_read_store_queries_total)
  nginx       the unit leaderboard through infra/nginx (micro-cache 1 s) next to nginx's own
              fixed answer (/nginx-health), 64 connections

    python -m benchmarks.bench_read [--quick] [--out FILE] [--sheets N] [--screens N]
                                    [--ingest-rate R] [--seconds S] [--live-only] [--hold S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
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
        # /readyz is 200 while judging catches up (the detectors' and the judging memory's
        # rebuilds after this fresh fill: minutes of a core at 1 M sheets on a loaded box);
        # no figure below should carry it.
        s.wait_until("judging caught up",
                     lambda: proc.check() and any(m in proc.log_path.read_text(errors="replace")
                                                  for m in CAUGHT_UP), 1800, every_s=1.0)
        r = httpx.put(f"{url}/v1/admin/campaigns/{definition.campaign}",
                      json=s.definition_json(definition),
                      headers={"authorization": f"Bearer {s.ADMIN_TOKEN}"}, timeout=60)
        r.raise_for_status()
        yield url, proc
    finally:
        proc.stop(60)


# What serve logs when judging's catch-up is over (runtime/embedded.py `_catch_up`).
CAUGHT_UP = ("verdicts remembered", "judging memory restored")
# The server counts as idle below this share of a core (the read models' poller alone is
# ~0.05-0.15 at 1 M sheets), waited for at most QUIET_WAIT_S.
QUIET_CORES = 0.25
QUIET_WAIT_S = 300.0

# What a browser sends (Chrome): the middleware would pick zstd.
BROWSER_ACCEPT_ENCODING = "gzip, deflate, br, zstd"


def wrk(url: str, connections: int, seconds: float, accept_encoding: str = "") -> dict[str, Any]:
    r = s.run_wrk(url, threads=min(2, connections), connections=connections, seconds=seconds,
                  script=READ_SCRIPT, env={"BENCH_ACCEPT_ENCODING": accept_encoding})
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
    text = httpx.get(f"{url}/metrics", timeout=30,
                     headers={"authorization": f"Bearer {s.ADMIN_TOKEN}"}).text
    found = re.search(r"^survey_read_store_queries_total ([0-9.e+]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else float("nan")


COUNTS_EVENT = b"event: counts"


class Screen:
    """One display screen: when its request went out, when its first event came, and how many
    `counts` events it read while held open."""

    def __init__(self) -> None:
        self.sent_s = math.nan
        self.first_s = math.nan
        self.events = 0

    @property
    def served(self) -> bool:
        return not math.isnan(self.first_s)


async def _screen(host: str, port: int, path: str, started: float, hold: bool,
                  screen: Screen) -> None:
    """Connects, reads up to the first event; with `hold`, reads on (counting `counts` events)
    until cancelled."""
    reader, writer = await asyncio.open_connection(host, port, limit=2**20)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
                     .encode())
        screen.sent_s = time.perf_counter() - started
        buffer = b""
        while True:
            chunk = await reader.read(262144)
            if not chunk:
                raise RuntimeError("stream closed before its first event")
            buffer += chunk
            at = buffer.find(b"event: snapshot")
            if at >= 0 and buffer.find(b"\n\n", at) >= 0:
                break
        screen.first_s = time.perf_counter() - started
        keep = len(COUNTS_EVENT) - 1  # an event's name split over two reads is still seen once
        tail = buffer[-keep:]
        while hold:
            chunk = await reader.read(262144)
            if not chunk:
                raise RuntimeError("stream closed while held open")
            seen = tail + chunk
            screen.events += seen.count(COUNTS_EVENT)
            tail = seen[-keep:]
    finally:
        writer.close()


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


def live_burst(url: str, path: str, screens: int, proc: s.Proc, hold_s: float = 0.0
               ) -> dict[str, Any]:
    """`screens` SSE connections opened at once (one client process, on uvloop), each timed to
    its first event; then, for `hold_s`, all held open while the server sends its events: the
    server's CPU and RSS over that time and the `counts` events each screen read."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, screens + 256)), hard))
    host, port = s.HOST, int(url.rsplit(":", 1)[1])
    pid = proc.pid
    out: dict[str, Any] = {"screens": screens}

    async def burst() -> None:
        made = [Screen() for _ in range(screens)]
        # What the process spends with no screen at all (poller, judging loop, ...): part of
        # every CPU figure below, the burst's and the held minute's. After its start `serve`
        # rebuilds its anomaly detectors from the stored verdicts behind a ready /readyz (at
        # 1 M sheets 0.8-0.9 of a core for minutes on a loaded machine): the burst waits for
        # the process to go quiet, and records how long it waited and how idle it got.
        waited = time.monotonic()
        quiet = 0  # consecutive quiet windows: one can fall between two busy stretches
        while quiet < 2 and time.monotonic() - waited < QUIET_WAIT_S:
            idle0 = s.cpu_seconds(pid)
            await asyncio.sleep(3.0)
            idle = (s.cpu_seconds(pid) - idle0) / 3.0
            quiet = quiet + 1 if idle < QUIET_CORES else 0
        out["server_idle_cores"] = round(idle, 3)
        out["quiet_wait_s"] = round(time.monotonic() - waited, 1)
        out["quiet_reached"] = quiet >= 2
        if quiet < 2:
            s.log(f"live: the server never went quiet ({idle:.2f} cores idle): figures disturbed")
        cpu_before, rss_before = s.cpu_seconds(pid), s.rss_bytes(pid)
        overflows = listen_overflows()
        started = time.perf_counter()
        tasks = [asyncio.ensure_future(_screen(host, port, path, started, hold_s > 0, m))
                 for m in made]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and any(
                not m.served and not t.done() for m, t in zip(made, tasks, strict=True)):
            await asyncio.sleep(0.02)
        wall = time.perf_counter() - started
        times = sorted(m.first_s for m in made if m.served)
        sent = [m.sent_s for m in made if not math.isnan(m.sent_s)]
        out.update({
            "got_first_event": len(times), "failed": screens - len(times),
            "first_event_p50_s": round(s.percentile(times, 50), 3) if times else None,
            "first_event_p99_s": round(s.percentile(times, 99), 3) if times else None,
            "last_first_event_s": round(times[-1], 3) if times else None,
            "burst_wall_s": round(wall, 3),
            # When each request was written (connected and sent), from the burst's start: how
            # much of the wait is the one client opening its connections, not the server.
            "request_sent_p50_s": round(s.percentile(sent, 50), 3) if sent else None,
            "request_sent_max_s": round(max(sent), 3) if sent else None,
            "server_cpu_s": round(s.cpu_seconds(pid) - cpu_before, 2),
            "server_rss_mb_before": round(rss_before / 2**20, 1),
            "server_rss_mb_after": round(s.rss_bytes(pid) / 2**20, 1),
            # Connections the kernel turned away with the listen queue full (the whole host's
            # count): each comes back only after the client's SYN retry, a second or more.
            "listen_overflows": listen_overflows() - overflows,
        })
        if hold_s:
            s.log(f"live: holding {len(times)} screens for {hold_s:g} s")
            cpu0, rss_max, events0 = s.cpu_seconds(pid), s.rss_bytes(pid), [m.events for m in made]
            t0 = time.monotonic()
            while time.monotonic() - t0 < hold_s:
                await asyncio.sleep(1.0)
                rss_max = max(rss_max, s.rss_bytes(pid))
            elapsed = time.monotonic() - t0
            cpu = s.cpu_seconds(pid) - cpu0
            per_screen = [m.events - e0 for m, e0 in zip(made, events0, strict=True) if m.served]
            out["held"] = {
                "seconds": round(elapsed, 1), "server_cpu_s": round(cpu, 2),
                "server_cores": round(cpu / elapsed, 3),
                "server_rss_mb_max": round(rss_max / 2**20, 1),
                "counts_events_read": sum(per_screen),
                "events_per_screen_min": min(per_screen, default=0),
                "events_per_screen_p50": s.percentile(per_screen, 50),
                "screens_still_open": sum(1 for t in tasks if not t.done()),
            }
        for t in tasks:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        errors = {f"{type(e).__name__}: {e}" for e in results
                  if isinstance(e, BaseException) and not isinstance(e, asyncio.CancelledError)}
        out["errors"] = sorted(errors)[:5]

    _uvloop_run()(burst())
    return out


def listen_overflows() -> int:
    """TcpExt ListenOverflows of this host (0 where /proc/net/netstat is not there)."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return 0
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return int(table.get("ListenOverflows", 0))
    return 0


def _uvloop_run() -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


def run(quick: bool, sheets: int, screens: int, ingest_rate: int, seconds: float,
        source: Path = s.ROOT, sweep: bool = True, with_nginx: bool = True,
        live_only: bool = False, hold_s: float = 0.0) -> dict[str, Any]:
    definition = s.bench_definition()
    out: dict[str, Any] = {"settings": {
        "quick": quick, "sheets_stored": sheets, "screens": screens, "ingest_rate": ingest_rate,
        "live_hold_s": hold_s, "live_only": live_only,
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
                if not live_only:
                    out.update(read_routes(url, work, paths, seconds, sweep, with_nginx))
                if ingest is not None and not hold_s:
                    ingest.terminate()  # the burst alone, as before; held screens need changes
                    ingest.wait(30)
                s.log(f"live: {screens} screens at once")
                out["live"] = live_burst(url, f"/v1/campaigns/{definition.campaign}/live",
                                         screens, proc, hold_s)
            finally:
                if ingest is not None and ingest.poll() is None:
                    ingest.terminate()
                    ingest.wait(30)
    return out


def read_routes(url: str, work: Path, paths: dict[str, str], seconds: float, sweep: bool,
                with_nginx: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    queries_before, t0 = store_queries(url), time.monotonic()
    measured: dict[str, Any] = {}
    health = [wrk(url + paths["healthz"], 64, seconds)]
    for name, path in paths.items():
        if name != "healthz":
            s.log(f"read: {name}")
            measured[name] = wrk(url + path, 64, seconds)
    s.log("read: leaderboard_unit, as a browser asks (compressed)")
    measured["leaderboard_unit_browser"] = wrk(url + paths["leaderboard_unit"], 64, seconds,
                                               BROWSER_ACCEPT_ENCODING)
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
    return out


def table(result: dict[str, Any]) -> str:
    live = result["live"]
    summary = (f"/live: {live['got_first_event']}/{live['screens']} screens had their first "
               f"event by {live['last_first_event_s']} s, server CPU {live['server_cpu_s']} s")
    if "held" in live:
        held = live["held"]
        summary += (f"; held {held['seconds']} s: {held['server_cores']} cores, RSS max "
                    f"{held['server_rss_mb_max']} MB, events per screen min "
                    f"{held['events_per_screen_min']} p50 {held['events_per_screen_p50']}")
    if "routes_c64" not in result:
        return summary
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
    return "\n".join([*lines, "", summary])


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
    parser.add_argument("--live-only", action="store_true",
                        help="only the /live burst (and --hold): no routes, sweep or nginx")
    parser.add_argument("--hold", type=float,
                        help="seconds to hold every screen open after the burst, counting its "
                        "events, with the server's CPU and RSS (the ingest keeps running)")
    args = parser.parse_args()
    quick = args.quick
    result = run(
        quick,
        sheets=args.sheets or (9_000 if quick else 1_000_000),
        screens=args.screens or (1_000 if quick else 10_000),
        ingest_rate=args.ingest_rate if args.ingest_rate is not None else (0 if quick else 2000),
        seconds=args.seconds or (4.0 if quick else 15.0),
        source=args.source, sweep=not args.no_sweep, with_nginx=not args.no_nginx,
        live_only=args.live_only,
        hold_s=args.hold if args.hold is not None else (0.0 if quick else 60.0),
    )
    s.log("\n" + table(result))
    s.emit(json.dumps(result, indent=2, ensure_ascii=False), args.out)


if __name__ == "__main__":
    main()
