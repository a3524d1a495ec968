"""An ambiguous insert: ClickHouse committed the sink's batch, but the answer never came back.

The stack's processes reach ClickHouse through a proxy in the test (tests/reliability/
tcp_proxy.py). Armed, it lets the worker's next `INSERT INTO submissions` through, waits until
the batch's rows are stored (checked on a direct connection), then cuts that connection instead
of passing the server's answer on. The sink sees an error for a batch that is in fact stored and
retries it: the retry must add nothing, to the verdicts or to any count table the views feed.

Deliberate break it catches: `SqlStore.insert_judged` without its lookup of the keys already
stored (`found = set()`: insert every row of the batch). The retry then stores the batch twice:
rows twice in `submissions`, every count table (unit_counts, link_hour_counts, answer_counts)
counting them twice, and `reconcile` failing.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
from clickhouse_driver import Client

from storage.count_tables import COUNT_TABLES, scope_sql
from tests.helpers import campaign_definition, sheet
from tests.integration.distributed_stack import Stack, wait_until
from tests.reliability.support import LINKS, post_all, stored_rows, wait_counted
from tests.reliability.tcp_proxy import ReplyDroppingProxy

pytestmark = pytest.mark.integration
CAMPAIGN = "rel-ambiguous-insert"
SHEETS = 300


@pytest.fixture(scope="module")
def proxy(clickhouse_url: str) -> Iterator[ReplyDroppingProxy]:
    parts = urlsplit(clickhouse_url)
    p = ReplyDroppingProxy(parts.hostname or "127.0.0.1", parts.port or 9000)
    yield p
    p.close()


@pytest.fixture(scope="module")
def stack(proxy: ReplyDroppingProxy, new_stack: Callable[..., Stack]) -> Stack:
    # Every role talks to ClickHouse through the proxy; only the armed insert is disturbed.
    return new_stack(clickhouse=f"clickhouse://127.0.0.1:{proxy.port}/default").start()


def direct(clickhouse_url: str, database: str) -> Client:
    parts = urlsplit(clickhouse_url)
    return Client(host=parts.hostname or "127.0.0.1", port=parts.port or 9000,
                  database=database, connect_timeout=5, send_receive_timeout=30)


def count_rows(clickhouse_url: str, database: str) -> int:
    client = direct(clickhouse_url, database)
    try:
        return int(client.execute(
            f"SELECT count() FROM submissions WHERE campaign = '{CAMPAIGN}'")[0][0])
    finally:
        client.disconnect()


def test_a_batch_whose_answer_was_lost_is_stored_and_counted_once(
    stack: Stack, proxy: ReplyDroppingProxy, clickhouse_url: str
) -> None:
    assert stack.define(campaign_definition(CAMPAIGN)).status_code == 200
    probe = sheet(CAMPAIGN, "NoSuch12")  # unknown link: stored, rejected, never counted
    stack.post_until_taken(probe, 30)
    wait_until("the probe stored", lambda: count_rows(clickhouse_url, stack.database) == 1,
               60, 0.25)

    proxy.arm(b"INSERT INTO submissions (",
              lambda: count_rows(clickhouse_url, stack.database) > 1)
    rng = random.Random(4)
    bodies = [sheet(CAMPAIGN, rng.choice(list(LINKS))) for _ in range(SHEETS)]
    post_all(stack, bodies)
    assert proxy.dropped.wait(60), "no insert went through the armed proxy"
    # The answer lost, the sink retried the batch (the worker logs the failed step).
    wait_until("the sink noticed the lost answer",
               lambda: "ClickHouse sink: step failed for" in stack.roles["worker"].tail(200_000),
               30, 0.25)

    expected = Counter(LINKS[b["link_code"]] for b in bodies)
    wait_counted(stack, CAMPAIGN, {u: expected.get(u, 0) for u in sorted(set(LINKS.values()))},
                 120)
    wait_until("every verdict stored",
               lambda: count_rows(clickhouse_url, stack.database) >= SHEETS + 1, 60, 0.25)

    # The base table, read without FINAL: a verdict inserted twice would show twice.
    rows = stored_rows(stack, CAMPAIGN)
    twice = {sid: n for sid, n in Counter(r[0] for r in rows).items() if n > 1}
    assert not twice, f"stored more than once after the retry: {list(twice.items())[:5]}"
    assert {r[0] for r in rows} == {b["submission_id"] for b in bodies} | {probe["submission_id"]}

    # Every count table the views feed equals its reference recomputed from the verdicts.
    client = direct(clickhouse_url, stack.database)
    try:
        for table in COUNT_TABLES:
            scope = scope_sql(CAMPAIGN, table=table)
            differences = client.execute(table.differences_sql(scope))
            assert not differences, f"{table.name} differs from the verdicts: {differences[:5]}"
        valid, rejected = client.execute(
            f"SELECT sum(valid), sum(rejected) FROM unit_counts WHERE {scope_sql(CAMPAIGN)}")[0]
        hours = client.execute(
            f"SELECT sum(valid) FROM link_hour_counts WHERE {scope_sql(CAMPAIGN)}")[0][0]
    finally:
        client.disconnect()
    assert (int(valid), int(rejected), int(hours)) == (SHEETS, 0, SHEETS)
    reconciled = stack.run("reconcile")
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    print(f"{proxy.passed_while_armed} server chunks passed before the answer was dropped")
