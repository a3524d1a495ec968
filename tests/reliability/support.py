"""What the fault tests share: services of their own to break, clients that retry, exact counts.

A fault test never touches the session's Kafka broker or ClickHouse server (other tests run on
them) nor the default ports: what it stops and starts is a `DedicatedService`, started by the
same infra/ script on free ports, whose data, config and log live in a directory named after its
port (infra/kafka/env.sh, infra/clickhouse/env.sh), wiped when the module ends (the broker the
modules share, tests/reliability/conftest.py: when the package ends).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from clickhouse_driver import Client
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.structs import OffsetAndMetadata

from tests.helpers import sheet, unavailable
from tests.integration.distributed_stack import Stack, wait_until
from tests.integration.embedded_server import free_port

ROOT = Path(__file__).resolve().parents[2]
# Links of tests.helpers.campaign_definition that count, and the unit each credits.
LINKS = {"Gd7kQ2xP": "gd-cyber", "Gd7kQ2xQ": "gd-cyber", "Gx1aB2cD": "gx-net",
         "Sh9zY8xW": "sh-uni"}
# First start of a service may install it (Maven, apt); a restart is quick.
START_TIMEOUT_S = 600
STOP_TIMEOUT_S = 120


class DedicatedService:
    """A Kafka broker or a ClickHouse server for fault tests, on free ports of its own."""

    def __init__(self, service: str) -> None:
        self.service = service
        if service == "kafka":
            self.port = free_port()
            self.env = {"SURVEY_KAFKA_PORT": str(self.port),
                        "SURVEY_KAFKA_CONTROLLER_PORT": str(free_port())}
        else:
            self.port = free_port()
            self.env = {"SURVEY_CLICKHOUSE_TCP_PORT": str(self.port),
                        "SURVEY_CLICKHOUSE_HTTP_PORT": str(free_port())}
        self.env["SURVEY_INFRA_TIMEOUT"] = "90"
        self.address = ""

    def _script(
        self, action: str, *args: str, timeout_s: float
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(ROOT / "infra" / self.service / f"{action}.sh"), *args],
            env={**os.environ, **self.env}, capture_output=True, text=True, timeout=timeout_s,
        )

    def start(self) -> str:
        """Starts it (again: its data survives a stop); returns its address."""
        done = self._script("start", timeout_s=START_TIMEOUT_S)
        if done.returncode != 0 or not done.stdout.strip():
            raise RuntimeError(f"infra/{self.service}/start.sh on :{self.port} failed "
                               f"({done.returncode}): {done.stderr[-3000:]}")
        self.address = done.stdout.strip().splitlines()[-1]
        return self.address

    def start_or_skip(self) -> str:
        """The first start: under CI a service that cannot start fails the module, else skips."""
        try:
            return self.start()
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
            unavailable(str(exc))

    def pid(self) -> int:
        """The running server's process id, from the pid file its start script wrote."""
        variable = {"kafka": "KAFKA_PIDFILE", "clickhouse": "CH_PIDFILE"}[self.service]
        done = subprocess.run(
            ["bash", "-c", f'. "{ROOT}/infra/{self.service}/env.sh" && cat "${variable}"'],
            env={**os.environ, **self.env}, capture_output=True, text=True, timeout=30,
        )
        if done.returncode != 0 or not done.stdout.strip().isdigit():
            raise RuntimeError(f"no pid for {self.service} on :{self.port}: {done.stderr}")
        return int(done.stdout.strip())

    def stop(self, *, wipe: bool = False) -> None:
        """SIGTERM and wait until it has exited (SIGKILL after SURVEY_INFRA_TIMEOUT)."""
        done = self._script("stop", *(["--wipe"] if wipe else []), timeout_s=STOP_TIMEOUT_S)
        if done.returncode != 0:
            raise RuntimeError(f"infra/{self.service}/stop.sh failed: {done.stderr[-2000:]}")

    def thaw(self) -> None:
        """SIGCONT, in case a test froze it (SIGSTOP); nothing when it is not running."""
        with contextlib.suppress(OSError, RuntimeError):
            os.kill(self.pid(), signal.SIGCONT)


class KafkaCluster:
    """Three KRaft nodes (infra/kafka/cluster/) for one test module, on free ports of their own:
    node n (1-based) is broker id n. Replication 3, writes acknowledged by 2 (min.insync)."""

    def __init__(self, nodes: int = 3) -> None:
        self.ports = [(free_port(), free_port()) for _ in range(nodes)]  # (broker, controller)
        self.env = {"SURVEY_KAFKA_CLUSTER_PORTS": " ".join(f"{b}:{c}" for b, c in self.ports),
                    "SURVEY_INFRA_TIMEOUT": "90"}
        self.bootstrap = ",".join(f"127.0.0.1:{b}" for b, _ in self.ports)

    def _script(
        self, action: str, *args: str, timeout_s: float
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(ROOT / "infra" / "kafka" / "cluster" / f"{action}.sh"), *args],
            env={**os.environ, **self.env}, capture_output=True, text=True, timeout=timeout_s,
        )

    def start(self, *nodes: int) -> str:
        """Starts the nodes (all by default) at once; returns once each serves metadata."""
        done = self._script("start", *map(str, nodes), timeout_s=START_TIMEOUT_S)
        if done.returncode != 0:
            raise RuntimeError(f"infra/kafka/cluster/start.sh {nodes} failed "
                               f"({done.returncode}): {done.stderr[-3000:]}")
        return self.bootstrap

    def start_or_skip(self) -> str:
        try:
            return self.start()
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
            unavailable(str(exc))

    def stop(self, *nodes: int, wipe: bool = False) -> None:
        """SIGTERM to the nodes (all by default), at once; returns once they have exited."""
        args = [*(["--wipe"] if wipe else []), *map(str, nodes)]
        done = self._script("stop", *args, timeout_s=STOP_TIMEOUT_S)
        if done.returncode != 0:
            raise RuntimeError(f"infra/kafka/cluster/stop.sh failed: {done.stderr[-2000:]}")

    def pid(self, node: int) -> int:
        done = subprocess.run(
            ["bash", "-c", f'. "{ROOT}/infra/kafka/env.sh" && cat "$KAFKA_PIDFILE"'],
            env={**os.environ, **self.env, "SURVEY_KAFKA_PORT": str(self.ports[node - 1][0])},
            capture_output=True, text=True, timeout=30,
        )
        if done.returncode != 0 or not done.stdout.strip().isdigit():
            raise RuntimeError(f"no pid for Kafka node {node}: {done.stderr}")
        return int(done.stdout.strip())

    def kill(self, node: int) -> None:
        """SIGKILL; returns once the process is gone."""
        pid = self.pid(node)
        os.kill(pid, signal.SIGKILL)
        wait_until(f"Kafka node {node} gone", lambda: not Path(f"/proc/{pid}").exists(), 30)

    def partitions(self, topic: str) -> dict[int, dict[str, Any]]:
        """Partition -> its metadata (`leader_id`, `replica_nodes`, `isr_nodes`), as a broker that
        is up has it."""
        client = admin(self.bootstrap)
        try:
            (described,) = client.describe_topics([topic])
        finally:
            client.close()
        return {int(p["partition_index"]): p for p in described["partitions"]}

    def lead_all(self, topic: str, node: int) -> None:
        """Makes `node` the leader of every partition of `topic`: first (preferred) in each
        replica list (a reordering: no data moves), then a preferred-leader election."""
        replicas = {p: [int(r) for r in meta["replica_nodes"]]
                    for p, meta in self.partitions(topic).items()}
        client = admin(self.bootstrap)
        try:
            client.alter_partition_reassignments(
                {TopicPartition(topic, p): [node, *(r for r in rs if r != node)]
                 for p, rs in replicas.items()})
            wait_until("the replica lists reordered", lambda: all(
                int(meta["replica_nodes"][0]) == node
                for meta in self.partitions(topic).values()), 30, 0.5)
            client.elect_leaders(0, {topic: sorted(replicas)})  # 0: preferred
        finally:
            client.close()
        wait_until(f"node {node} leading every partition of {topic}", lambda: all(
            int(meta["leader_id"]) == node for meta in self.partitions(topic).values()), 30, 0.5)


@dataclass
class Answer:
    status: int  # 0: no HTTP answer (connection refused, reset, timed out)
    started: float  # time.monotonic() when the request was sent
    ended: float  # ... and when its answer (or error) came back


@dataclass
class Senders:
    """Answering pages under load: each thread posts new sheets at a steady pace and retries a
    sheet, with the same submission_id, on a 503 or a connection error until it gets its 202.

    `acked` holds every sheet that got a 202 (its id and the unit its link credits): the
    independent count the stored counts must equal. Any other answer is kept in `unexpected`.
    """

    url: str
    campaign: str
    threads: int = 4
    sheets_per_s: float = 80.0
    acked: dict[str, str] = field(default_factory=dict)
    answers: list[Answer] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    _new: threading.Event = field(default_factory=threading.Event)  # set: no new sheets
    _give_up: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Senders:
        for i in range(self.threads):
            t = threading.Thread(target=self._run, args=(i,), daemon=True, name=f"sender-{i}")
            t.start()
            self._workers.append(t)
        return self

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        pause = self.threads / self.sheets_per_s
        with httpx.Client(timeout=20) as client:
            while not self._new.is_set():
                link = rng.choice(list(LINKS))
                body = sheet(self.campaign, link)
                self._send_until_taken(client, body, LINKS[link])
                self._new.wait(pause)

    def _send_until_taken(self, client: httpx.Client, body: dict[str, Any], unit: str) -> None:
        sid = body["submission_id"]
        while not self._give_up.is_set():
            started = time.monotonic()
            try:
                r = client.post(f"{self.url}/v1/submissions", json=body)
                status, retry_after = r.status_code, float(r.headers.get("retry-after", "0.2"))
            except httpx.HTTPError:
                status, retry_after = 0, 0.2
            with self._lock:
                self.answers.append(Answer(status, started, time.monotonic()))
                if status == 202:
                    self.acked[sid] = unit
                    return
                if status not in (0, 503):
                    self.unexpected.append(f"{sid}: {status} {r.text[:300]}")
                    return
            # The page waits as told (at most a second here) and sends the same sheet again.
            self._give_up.wait(min(retry_after, 1.0))
        with self._lock:
            self.unfinished.append(sid)

    def assert_all_taken(self) -> None:
        """Every sheet sent got its 202 in the end, and no answer was other than 202 or 503."""
        assert not self.unexpected, self.unexpected[:5]
        assert not self.unfinished, f"{len(self.unfinished)} sheets never taken"

    def count_acked(self) -> int:
        with self._lock:
            return len(self.acked)

    def answered(self, status: int, after: float) -> int:
        with self._lock:
            return sum(1 for a in self.answers if a.status == status and a.started >= after)

    def finish(self, timeout_s: float) -> None:
        """No new sheets; the sheets still retrying get until `timeout_s` to be taken."""
        self._new.set()
        deadline = time.monotonic() + timeout_s
        for t in self._workers:
            t.join(max(0.1, deadline - time.monotonic()))
        self._give_up.set()
        for t in self._workers:
            t.join(30)


def post_all(stack: Stack, bodies: list[dict[str, Any]]) -> None:
    """Posts every sheet, 8 at a time; each must be answered 202."""
    with httpx.Client(timeout=20) as client, concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(
            lambda b: client.post(f"{stack.collector_url}/v1/submissions", json=b), bodies))
    assert [r.status_code for r in answers] == [202] * len(bodies), [
        r.text for r in answers if r.status_code != 202][:3]


def restart_worker_if_exited(stack: Stack) -> None:
    """A worker that lost its broker may have exited (it stops rather than commit what it did
    not finish); a supervisor starts it again, as here."""
    worker = stack.roles["worker"]
    if not worker.alive():
        print(f"worker exited during the fault ({worker.proc and worker.proc.returncode}); "
              "started again")
        stack.start_worker()


def clickhouse_client(stack: Stack) -> Client:
    host_port = stack.clickhouse_url.split("://", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    return Client(host=host, port=int(port), database=stack.database, connect_timeout=5,
                  send_receive_timeout=30)


def stored_rows(stack: Stack, campaign: str) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(submission_id, fingerprint, status, reasons) of every stored verdict row of a campaign,
    read without FINAL: a verdict inserted twice shows twice, even before a merge."""
    client = clickhouse_client(stack)
    try:
        rows = client.execute(
            "SELECT submission_id, fingerprint, status, reasons FROM submissions "
            f"WHERE campaign = '{campaign}'")
    finally:
        client.disconnect()
    return [(str(a), str(b), str(c), tuple(str(x) for x in d)) for a, b, c, d in rows]


def valid_by_unit(stack: Stack, campaign: str) -> dict[str, int]:
    board = stack.board(campaign, "unit")
    return {unit: int(board[unit]["valid"]) if unit in board else 0
            for unit in sorted(set(LINKS.values()))}


def wait_counted(stack: Stack, campaign: str, expected: dict[str, int], timeout_s: float) -> None:
    """Until the unit leaderboard shows exactly `expected` (bounded); on a timeout, the assert
    shows what it showed."""
    try:
        wait_until("every acknowledged sheet counted",
                   lambda: valid_by_unit(stack, campaign) == expected, timeout_s, 0.5)
    except TimeoutError:
        tails = "\n".join(f"{key}:\n{role.tail()}" for key, role in stack.roles.items()
                          if key.startswith("worker"))
        assert valid_by_unit(stack, campaign) == expected, tails


def assert_counted_once(stack: Stack, campaign: str, acked: dict[str, str],
                        others: set[str], timeout_s: float = 180) -> None:
    """Once the unit leaderboard counts every acknowledged sheet (`acked`: id -> unit; waited
    for, bounded) and a moment more for a late duplicate to show: every acknowledged sheet
    stored exactly once and accepted; nothing else stored but `others`; the leaderboards at
    every level agree with the acknowledged sheets; reconcile finds no difference."""
    expected = Counter(acked.values())
    wait_counted(stack, campaign, {u: expected.get(u, 0) for u in sorted(set(LINKS.values()))},
                 timeout_s)
    time.sleep(1.5)  # a late duplicate would show now
    rows = stored_rows(stack, campaign)
    ids = Counter(sid for sid, *_ in rows)
    twice = {sid: n for sid, n in ids.items() if n > 1}
    assert not twice, f"stored more than once: {list(twice.items())[:10]}"
    assert set(ids) == set(acked) | others, (
        f"missing {sorted(set(acked) - set(ids))[:10]}, "
        f"unexpected {sorted(set(ids) - set(acked) - others)[:10]}")
    not_accepted = [(sid, status, reasons) for sid, _, status, reasons in rows
                    if sid in acked and status != "accepted"]
    assert not not_accepted, not_accepted[:10]
    assert valid_by_unit(stack, campaign) == {u: expected.get(u, 0)
                                              for u in sorted(set(LINKS.values()))}
    # Provinces and work regions are sums of the same counts view: they agree too.
    province_of = {"gd-cyber": "44", "gx-net": "45", "sh-uni": "31"}
    provinces = {p: int(r["valid"]) for p, r in stack.board(campaign, "province").items()}
    for unit, province in province_of.items():
        assert provinces.get(province, 0) == expected.get(unit, 0), (province, provinces)
    regions = {w: int(r["valid"]) for w, r in stack.board(campaign, "work_region").items()}
    assert regions.get("south", 0) == expected["gd-cyber"] + expected["gx-net"], regions
    assert regions.get("east", 0) == expected["sh-uni"], regions
    # The per-submission status, through the API, for a sample of the acknowledged sheets.
    for sid in random.sample(sorted(acked), min(30, len(acked))):
        got = stack.status(campaign, sid).json()
        assert got["status"] == "accepted" and got["unit"] == acked[sid], (sid, got)
    reconciled = stack.run("reconcile")
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr


# -- Kafka offsets ---------------------------------------------------------------------------------


def admin(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap.split(","), request_timeout_ms=10_000)


def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None,
                             enable_auto_commit=False, request_timeout_ms=10_000)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp: int(o) for tp, o in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def committed(bootstrap: str, group: str, topic: str) -> dict[TopicPartition, int]:
    client = admin(bootstrap)
    try:
        offsets = client.list_group_offsets({group: None}).get(group, {})
    finally:
        client.close()
    return {tp: int(o.offset) for tp, o in offsets.items() if tp.topic == topic}


def group_state(bootstrap: str, group: str) -> str:
    client = admin(bootstrap)
    try:
        described = client.describe_groups([group])
    finally:
        client.close()
    info: Any = described[group] if isinstance(described, dict) else described[0]
    state = info.get("group_state") if isinstance(info, dict) else getattr(info, "state", "")
    return str(state or "")


def lag(bootstrap: str, group: str, topic: str) -> int:
    """Records of `topic` the group has not committed past, over all its partitions."""
    now = committed(bootstrap, group, topic)
    return sum(end - now.get(tp, 0) for tp, end in end_offsets(bootstrap, topic).items())


def group_members(bootstrap: str, group: str) -> list[str]:
    """The group's members now: each one's static instance id (or member id without one)."""
    client = admin(bootstrap)
    try:
        info = client.describe_groups([group])[group]
    finally:
        client.close()
    return sorted(str(m.get("group_instance_id") or m.get("member_id"))
                  for m in info.get("members") or ())


def rewind(bootstrap: str, group: str, topics: list[str]) -> dict[str, int]:
    """Sets the group's committed offsets of `topics` back to the start; returns how many
    records that hands back, per topic. The group must be empty (its consumers stopped)."""
    offsets: dict[TopicPartition, OffsetAndMetadata] = {}
    handed_back: dict[str, int] = {}
    for topic in topics:
        ends = end_offsets(bootstrap, topic)
        now = committed(bootstrap, group, topic)
        handed_back[topic] = sum(now.get(tp, 0) for tp in ends)
        for tp in ends:
            offsets[tp] = OffsetAndMetadata(0, "", -1)
    client = admin(bootstrap)
    try:
        result = client.alter_group_offsets(group, offsets)
    finally:
        client.close()
    failed = {tp: err for tp, err in result.items() if getattr(err, "errno", 0)}
    assert not failed, f"rewinding {group} failed: {failed}"
    for topic in topics:
        assert all(o == 0 for o in committed(bootstrap, group, topic).values()), topic
    return handed_back
