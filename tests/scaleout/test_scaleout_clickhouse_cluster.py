"""Two ClickHouse servers as shards behind Distributed tables (storage/cluster.py): verdicts are
sharded by submission id, stored once however often they are sent, and counts read through the
Distributed tables equal the sum of the shards'."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import os
import random
import re
import subprocess
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from clickhouse_driver import Client

from schemas.events import Status, SubmissionJudged
from storage import cluster, migrations, open_store
from tests.conftest import ROOT
from tests.helpers import campaign_definition, sheet, unavailable
from tests.integration.distributed_stack import Stack, wait_until
from tests.integration.embedded_server import ADMIN, free_port
from tests.scaleout.load import clickhouse_counts, drive, valid_counts

pytestmark = pytest.mark.integration
CLUSTER = "survey_shards"
UNITS = ["gd-cyber", "gx-net", "sh-uni", "bj-cert"]
LINKS = {"Gd7kQ2xP": "gd-cyber", "Gx1aB2cD": "gx-net", "Sh9zY8xW": "sh-uni"}
START = dt.datetime(2026, 9, 13, tzinfo=dt.UTC)


class Shards:
    """Two ClickHouse servers (infra/clickhouse/start.sh), each told of both by remote_servers."""

    def __init__(self, workdir: Path) -> None:
        self.ports = [(free_port(), free_port()) for _ in range(2)]
        replicas = "".join(
            f"<shard><replica><host>127.0.0.1</host><port>{tcp}</port></replica></shard>"
            for tcp, _ in self.ports)
        self.extra = workdir / "remote_servers.xml"
        self.extra.write_text(f'<?xml version="1.0"?>\n<yandex><remote_servers><{CLUSTER}>'
                              f"{replicas}</{CLUSTER}></remote_servers></yandex>\n")
        self.urls = [f"clickhouse://127.0.0.1:{tcp}" for tcp, _ in self.ports]

    def _script(self, action: str, n: int, *args: str) -> subprocess.CompletedProcess[str]:
        tcp, http = self.ports[n]
        env = {**os.environ, "SURVEY_CLICKHOUSE_TCP_PORT": str(tcp),
               "SURVEY_CLICKHOUSE_HTTP_PORT": str(http), "SURVEY_INFRA_TIMEOUT": "90",
               "SURVEY_CLICKHOUSE_EXTRA_CONFIG": str(self.extra)}
        return subprocess.run(["bash", str(ROOT / "infra" / "clickhouse" / f"{action}.sh"), *args],
                              env=env, capture_output=True, text=True, timeout=600)

    def start(self) -> Shards:
        for n in range(2):
            result = self._script("start", n)
            if result.returncode != 0:
                message = f"ClickHouse shard {n} did not start: {result.stderr[-3000:]}"
                unavailable(message)
        return self

    def stop(self) -> None:
        for n in range(2):
            self._script("stop", n, "--wipe")

    def client(self, n: int, database: str) -> Client:
        return Client(host="127.0.0.1", port=self.ports[n][0], database=database)


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shards]:
    s = Shards(tmp_path_factory.mktemp("shards"))
    try:
        yield s.start()
    finally:
        s.stop()


def verdicts(campaign: str, n: int) -> list[SubmissionJudged]:
    rnd = random.Random(7)
    out = []
    for i in range(n):
        received = START + dt.timedelta(seconds=rnd.randrange(10 * 86400))
        unit = rnd.choice(UNITS)
        statuses: list[Status] = ["accepted", "rejected", "test"]
        status = rnd.choices(statuses, [85, 12, 3])[0]
        out.append(SubmissionJudged(
            submission_id=str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
            campaign=campaign, fingerprint=f"{rnd.getrandbits(64):016x}",
            source_position=f"0:{i}", received_at=received, status=status,
            reasons=("too_fast",) if status == "rejected" else (), rules_version="2026.1",
            phase="collection", link_code=f"L{UNITS.index(unit)}", unit=unit,
            province=str(11 + UNITS.index(unit)), work_region=f"wr{UNITS.index(unit)}",
            channel="wechat", questionnaire_version="2023.1", respondent_province="44",
            respondent_city="4401", age_group="25-34",
            started_at=received - dt.timedelta(seconds=300),
            submitted_at=received - dt.timedelta(seconds=1), duration_seconds=299.0,
            device_hash=f"{rnd.getrandbits(64):016x}", client=f"{rnd.getrandbits(64):016x}",
            answers_json=json.dumps({"q1": rnd.randrange(1, 6)}), opinion="",
        ))
    return out


def test_distributed_tables_shard_by_submission_id_and_counts_are_the_shards_sum(
    shards: Shards,
) -> None:
    database = f"cl_{uuid.uuid4().hex[:8]}"
    campaign = "c-cluster"
    cluster.apply(cluster.ClusterLayout(CLUSTER, database), shards.urls)
    store = open_store(f"{shards.urls[0]}/{database}?insert_distributed_sync=1")
    other = open_store(f"{shards.urls[1]}/{database}?insert_distributed_sync=1")
    try:
        # The plain migrations find their cluster forms recorded on every node: nothing to do.
        assert store.migrate() == [] and other.migrate() == []
        assert cluster.apply(cluster.ClusterLayout(CLUSTER, database), shards.urls) == {
            url: [] for url in shards.urls}
        rows = verdicts(campaign, 2000)
        assert store.insert_judged(rows) == len(rows)
        # Redeliveries, through either node, in any order: nothing is inserted again.
        assert store.insert_judged(rows) == 0
        assert other.insert_judged(random.sample(rows, 500)) == 0

        per_shard: list[set[str]] = []
        shard_counts: list[Counter[str]] = []
        for n in range(2):
            client = shards.client(n, database)
            try:
                ids = [str(r[0]) for r in client.execute(
                    "SELECT submission_id FROM submissions_local")]
                # Each shard holds exactly the ids the key sends it: sipHash64(id) % 2 == n.
                misplaced = client.execute(
                    "SELECT count() FROM submissions_local"
                    f" WHERE sipHash64(submission_id) % 2 != {n}")
                counts = client.execute(
                    "SELECT unit, sum(valid) FROM unit_counts_local WHERE campaign = %(c)s"
                    " GROUP BY unit", {"c": campaign})
            finally:
                client.disconnect()
            assert len(ids) == len(set(ids)) and ids, f"shard {n}: {len(ids)} rows"
            assert misplaced == [(0,)]
            per_shard.append(set(ids))
            shard_counts.append(Counter({str(u): int(v) for u, v in counts}))
        assert not per_shard[0] & per_shard[1]
        assert per_shard[0] | per_shard[1] == {r.submission_id for r in rows}

        expected = Counter(r.unit for r in rows if r.status == "accepted")
        assert shard_counts[0] + shard_counts[1] == expected
        # The leaderboard's read, through the Distributed tables, from either node.
        for s in (store, other):
            assert {u: c.valid for u, c in s.unit_counts(campaign).items()} == expected
            assert s.exact_unit_counts(campaign) == s.unit_counts(campaign)
        probe = rows[17]
        status = other.submission_status(campaign, probe.submission_id)
        assert status is not None and status.status == probe.status
    finally:
        store.close()
        other.close()
    # A database first migrated for a single server is refused, not silently left as it is.
    single = f"{database}_single"
    with open_store(f"{shards.urls[0]}/{single}") as plain:
        plain.migrate()
    with pytest.raises(cluster.ClusterDdlError, match="single-server tables"):
        cluster.apply(cluster.ClusterLayout(CLUSTER, single), shards.urls[:1])


def test_the_distributed_roles_run_unchanged_on_the_sharded_store(
    shards: Shards, scaleout_stack: Callable[..., Stack],
) -> None:
    """Collector -> Kafka -> worker -> Distributed tables over both shards -> API and reconcile."""
    stack = scaleout_stack(clickhouse=f"{shards.urls[0]}/default")
    cluster.apply(cluster.ClusterLayout(CLUSTER, stack.database), shards.urls)
    stack.env["SURVEY_CLICKHOUSE_URL"] = f"{stack.clickhouse_url}?insert_distributed_sync=1"
    stack.start()  # `migrate` finds the cluster's migrations recorded: topics only
    campaign = "c-sharded"
    assert stack.define(campaign_definition(campaign)).status_code == 200
    stack.post_until_taken(sheet(campaign, "NoSuch12"), 20)
    bodies = [sheet(campaign, random.choice(list(LINKS))) for _ in range(600)]
    expected = dict.fromkeys(LINKS.values(), 0)
    for body in bodies:
        expected[LINKS[body["link_code"]]] += 1
    result = drive(f"{stack.collector_url}/v1/submissions", bodies, threads=8)
    assert len(result.acked) == len(bodies)
    try:
        wait_until("every sheet counted",
                   lambda: valid_counts(stack, campaign) == expected, 120, 0.5)
    except TimeoutError:
        assert valid_counts(stack, campaign) == expected
    total = len(bodies) + 1
    assert clickhouse_counts(stack, campaign) == (total, total)
    on_shard = []
    for n in range(2):
        client = shards.client(n, stack.database)
        try:
            on_shard.append(int(client.execute("SELECT count() FROM submissions_local")[0][0]))
        finally:
            client.disconnect()
    assert sum(on_shard) == total and all(on_shard), on_shard
    # A regional query through the API reads the base table through the Distributed table.
    r = httpx.get(f"{stack.api_url}/v1/campaigns/{campaign}/counts",
                  params={"by": "status"}, headers=ADMIN, timeout=10)
    assert r.status_code == 200, r.text
    assert {row["status"]: row["valid"] + row["rejected"] + row["test"]
            for row in r.json()["rows"]}.get("accepted") == len(bodies)
    reconciled = stack.run("reconcile")
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr


def test_later_migrations_recreating_a_view_or_adding_a_column_have_a_cluster_form() -> None:
    layout = cluster.ClusterLayout(CLUSTER, "survey")
    later = migrations.Migration("0099_later", (
        "DROP TABLE IF EXISTS unit_counts_mv",
        "ALTER TABLE submissions ADD COLUMN IF NOT EXISTS source String DEFAULT ''",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS unit_counts_mv TO unit_counts AS SELECT campaign,"
        " unit, sum(toUInt64(status = 'accepted')) AS valid FROM submissions GROUP BY campaign,"
        " unit",
    ))
    rendered = cluster.migrations_for(layout, [*migrations.load(), later])[-1].statements
    assert rendered == (
        "DROP TABLE IF EXISTS survey.unit_counts_mv",
        "ALTER TABLE survey.submissions_local ADD COLUMN IF NOT EXISTS source String DEFAULT ''",
        "ALTER TABLE survey.submissions ADD COLUMN IF NOT EXISTS source String DEFAULT ''",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS survey.unit_counts_mv TO survey.unit_counts_local"
        " AS SELECT campaign, unit, sum(toUInt64(status = 'accepted')) AS valid FROM"
        " survey.submissions_local GROUP BY campaign, unit",
    )
    with pytest.raises(cluster.ClusterDdlError, match=r"teach storage/cluster\.py"):
        cluster.migrations_for(layout, [migrations.Migration("0100_x", ("OPTIMIZE TABLE x",))])


def test_replicated_variant_uses_the_keeper_path_per_shard_and_replica(
    capsys: pytest.CaptureFixture[str],
) -> None:
    layout = cluster.ClusterLayout(CLUSTER, "survey", replicated=True, on_cluster=True)
    ddl = cluster.statements(layout)
    # `python -m storage.cluster` without nodes prints the same statements.
    assert cluster.main(["--cluster", CLUSTER, "--database", "survey", "--replicated",
                         "--on-cluster"]) == 0
    assert capsys.readouterr().out == ";\n\n".join(ddl) + ";\n"
    local = [s for s in ddl if "_local" in s.split("(")[0] and "ENGINE" in s and "AS" not in
             s.split("(")[0]]
    # INSERT has no ON CLUSTER: a backfill runs on each node (storage.cluster.apply does that).
    assert local and all(" ON CLUSTER survey_shards" in s for s in ddl if "INSERT" not in s[:6])
    assert ("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/survey/"
            "submissions_local', '{replica}')") in "\n".join(local)
    assert ("ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/survey/"
            "unit_counts_local', '{replica}')") in "\n".join(local)
    assert ("ENGINE = Distributed(survey_shards, survey, submissions_local, "
            "sipHash64(submission_id))") in "\n".join(ddl)
    # Every plain table has its local and Distributed form; every view reads and writes locals.
    plain = [s for m in migrations.load() for s in m.statements]
    tables = [s for s in plain if s.lstrip().startswith("CREATE TABLE")]
    views = [s for s in plain if "MATERIALIZED VIEW" in s]
    backfills = [s for s in plain if s.lstrip().startswith("INSERT")]
    # A column added to a table is added to its local and its Distributed form; a dropped view
    # and a truncated table have one form each (views and data live in the locals).
    alters = [s for s in plain if s.lstrip().startswith("ALTER TABLE")]
    once = [s for s in plain if s.lstrip().startswith(("DROP TABLE", "TRUNCATE TABLE"))]
    assert len(ddl) == (1 + 2 * len(tables) + len(views) + len(backfills) + 2 * len(alters)
                        + len(once))
    for s in ddl:
        if "MATERIALIZED VIEW" in s or s.startswith("INSERT"):
            assert "_local " in s.split("AS", 1)[0] or s.startswith("INSERT INTO survey.")
            assert "FROM survey.submissions_local" in s
        if "Distributed" in s:
            assert "MATERIALIZED" not in s  # 18.16 refuses them on a Distributed insert
    # Every table whose engine collapses versions of a key is sharded by that key, never at
    # random: a new version must reach the shard that holds the old one.
    for statement in plain:
        match = re.match(r"CREATE TABLE IF NOT EXISTS (\w+).*ENGINE = (\w+)", statement, re.S)
        if match and match.group(2) == "ReplacingMergeTree":
            engine = f"Distributed(survey_shards, survey, {match.group(1)}_local"
            (dist,) = [d for d in ddl if engine in d]
            assert "rand()" not in dist and "sipHash64(" in dist, dist
    # Views and backfills read only the shard's own tables, subqueries included.
    names = {t.split("IF NOT EXISTS", 1)[1].split()[0] for t in tables}
    for s in ddl:
        for table in re.findall(r"\b(?:FROM|JOIN)\s+([\w.]+)", s):
            assert table.split(".")[-1] not in names, f"{table} read through Distributed: {s}"


# Replicated: 2 shards x 2 replicas on ZooKeeper

CLUSTER_DIR = ROOT / "infra" / "clickhouse" / "cluster"


def _run(script: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(script), *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=600)


def _started(what: str, result: subprocess.CompletedProcess[str]) -> None:
    if result.returncode != 0:
        message = f"{what} did not start: {result.stderr[-3000:]}"
        unavailable(message)


class ReplicatedCluster:
    """ZooKeeper (infra/clickhouse/cluster/keeper-start.sh) and four ClickHouse servers, each with
    the config.d that infra/clickhouse/cluster/node-config.sh writes for its shard and replica."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.keeper_env = {"SURVEY_ZOOKEEPER_PORT": str(free_port()), "SURVEY_INFRA_TIMEOUT": "90"}
        # nodes[shard][replica] = (tcp, http, interserver)
        self.nodes = [[(free_port(), free_port(), free_port()) for _ in range(2)]
                      for _ in range(2)]
        self.topology = " ".join(",".join(f"127.0.0.1:{tcp}" for tcp, _, _ in shard)
                                 for shard in self.nodes)

    def url(self, shard: int, replica: int) -> str:
        return f"clickhouse://127.0.0.1:{self.nodes[shard][replica][0]}"

    def urls(self) -> list[str]:
        return [self.url(s, r) for s in range(2) for r in range(2)]

    def _env(self, shard: int, replica: int) -> dict[str, str]:
        tcp, http, _ = self.nodes[shard][replica]
        return {"SURVEY_CLICKHOUSE_TCP_PORT": str(tcp), "SURVEY_CLICKHOUSE_HTTP_PORT": str(http),
                "SURVEY_INFRA_TIMEOUT": "90",
                "SURVEY_CLICKHOUSE_EXTRA_CONFIG": str(self.workdir / f"node-{shard}-{replica}.xml")}

    def start(self) -> ReplicatedCluster:
        keeper = _run(CLUSTER_DIR / "keeper-start.sh", self.keeper_env)
        _started("ZooKeeper", keeper)
        address = keeper.stdout.strip().splitlines()[-1]
        for shard in range(2):
            for replica in range(2):
                config = _run(CLUSTER_DIR / "node-config.sh", {}, CLUSTER, self.topology,
                              f"0{shard + 1}", f"r{replica + 1}",
                              str(self.nodes[shard][replica][2]), address)
                assert config.returncode == 0, config.stderr
                (self.workdir / f"node-{shard}-{replica}.xml").write_text(config.stdout)
                self.start_node(shard, replica)
        return self

    def start_node(self, shard: int, replica: int) -> None:
        script = ROOT / "infra" / "clickhouse" / "start.sh"
        _started(f"ClickHouse {shard}/{replica}", _run(script, self._env(shard, replica)))

    def stop_node(self, shard: int, replica: int, *args: str, grace_s: int = 90) -> None:
        env = {**self._env(shard, replica), "SURVEY_INFRA_TIMEOUT": str(grace_s)}
        _run(ROOT / "infra" / "clickhouse" / "stop.sh", env, *args)

    def stop(self) -> None:
        # Wiped anyway: SIGKILL after 3 s instead of waiting for 18.16's slow shutdown of
        # replicated tables; in parallel.
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda n: self.stop_node(*n, "--wipe", grace_s=3),
                          [(s, r) for s in range(2) for r in range(2)]))
        _run(CLUSTER_DIR / "keeper-stop.sh", self.keeper_env, "--wipe")

    def count(self, shard: int, replica: int, database: str) -> int:
        client = Client(host="127.0.0.1", port=self.nodes[shard][replica][0], database=database)
        try:
            return int(client.execute("SELECT count() FROM submissions_local")[0][0])
        finally:
            client.disconnect()

    def wait_replicas_agree(self, database: str, total: int) -> list[int]:
        """Bounded wait until both replicas of each shard hold the same rows, `total` in all."""

        def agree() -> bool:
            counts = [[self.count(s, r, database) for r in range(2)] for s in range(2)]
            return all(a == b for a, b in counts) and sum(c[0] for c in counts) == total

        wait_until("replicas in step", agree, 90, 0.25)
        return [self.count(s, 0, database) for s in range(2)]


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicatedCluster]:
    c = ReplicatedCluster(tmp_path_factory.mktemp("replicated"))
    try:
        yield c.start()
    finally:
        c.stop()


def test_replicated_shards_survive_a_replica_down_and_count_exactly(
    replicated: ReplicatedCluster,
) -> None:
    database = f"rp_{uuid.uuid4().hex[:8]}"
    campaign = "c-replicated"
    applied = cluster.apply(cluster.ClusterLayout(CLUSTER, database, replicated=True),
                            replicated.urls())
    assert all(names == [m.name for m in migrations.load()] for names in applied.values())
    rows = verdicts(campaign, 2400)
    first, later = rows[:1600], rows[1600:]
    store = open_store(f"{replicated.url(0, 0)}/{database}?insert_distributed_sync=1")
    try:
        assert store.insert_judged(first) == len(first)
    finally:
        store.close()
    per_shard = replicated.wait_replicas_agree(database, len(first))
    assert all(per_shard), per_shard  # both shards hold part of the verdicts

    # One replica of shard 1 goes down: writes and reads go to its peer.
    replicated.stop_node(0, 0)
    other = open_store(f"{replicated.url(1, 1)}/{database}?insert_distributed_sync=1")
    try:
        assert other.insert_judged(later) == len(later)
        assert other.insert_judged(rows) == 0  # a redelivery of everything: nothing new
        expected = Counter(r.unit for r in rows if r.status == "accepted")
        assert {u: c.valid for u, c in other.unit_counts(campaign).items()} == expected
    finally:
        other.close()
    # Back up, it fetches what it missed from its peer (through ZooKeeper's replication log).
    replicated.start_node(0, 0)
    replicated.wait_replicas_agree(database, len(rows))
    for shard, replica in ((0, 0), (0, 1), (1, 0)):
        s = open_store(f"{replicated.url(shard, replica)}/{database}")
        try:
            assert {u: c.valid for u, c in s.unit_counts(campaign).items()} == expected
            assert s.exact_unit_counts(campaign) == s.unit_counts(campaign)
        finally:
            s.close()
