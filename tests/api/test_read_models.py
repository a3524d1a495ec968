"""Public reads come from one snapshot per tick (DESIGN principle 6), counted at the Store port
around the real chDB store, over real HTTP."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from storage import open_store
from tests.api.support import (
    ADMIN,
    CAMPAIGN,
    CountingStore,
    build,
    first_event,
    get_many,
    registry_with,
    served,
    verdict,
)
from tests.storage.support import drop

# They serve the API over real HTTP (uvicorn on a free port) and the models read the real
# store: a service, declared as such (sockets are blocked for tests that declare none).
pytestmark = pytest.mark.integration

LEVELS = ("unit", "province", "work_region")
PUBLIC_VIEWS = [
    *(f"/v1/campaigns/{CAMPAIGN}/leaderboard?level={lv}" for lv in LEVELS),
    f"/v1/campaigns/{CAMPAIGN}/leaderboard?level=unit&limit=2",
    *(f"/v1/campaigns/{CAMPAIGN}/pacing?level={lv}" for lv in LEVELS),
    f"/v1/campaigns/{CAMPAIGN}",
]
# A limited leaderboard need not show a sheet counted to a unit below its cut.
UNLIMITED_VIEWS = [p for p in PUBLIC_VIEWS if "limit=" not in p]


@pytest.fixture(scope="module", params=[
    "chdb", pytest.param("clickhouse", marks=pytest.mark.integration),
])
def chdb(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[CountingStore]:
    """The real store of each runtime (embedded: chDB; distributed: the ClickHouse server),
    counted at the Store port. Named for the embedded one, which every run has."""
    if request.param == "chdb":
        path: Path = tmp_path_factory.mktemp("readside") / "chdb"
        url = f"chdb://{path}"
    else:
        server = request.getfixturevalue("clickhouse_url").rsplit("/", 1)[0]
        url = f"{server}/readside_{uuid.uuid4().hex[:12]}"
    with open_store(url) as store:
        store.migrate()
        store.insert_judged([verdict(), verdict(), verdict(unit="gx-net", link="Gx1aB2cD",
                                                           province="45")])
        yield CountingStore(store)
        if request.param != "chdb":
            drop(store)


def _valid(body: dict[str, object], unit: str = "gd-cyber") -> int:
    rows = body["rows"]
    assert isinstance(rows, list)
    return int(next(r["valid"] for r in rows if r["id"] == unit))


def test_concurrent_reads_inside_one_tick_cost_one_store_query(chdb: CountingStore) -> None:
    """Catches a request that queries the store itself (the old handlers), or a cold start
    where every request arriving together queries (no single flight). The poller is stopped,
    so every request falls inside one tick."""
    app = build(chdb, registry_with())
    app.state.reads.close()  # no poller: time stands still inside the first tick
    with served(app) as base:
        before = chdb.unit_count_queries
        answers = get_many(base, [PUBLIC_VIEWS[i % len(PUBLIC_VIEWS)] for i in range(64)])
        assert all(r.status_code == 200 for r in answers), [r.text for r in answers][:3]
        assert chdb.unit_count_queries - before == 1
        again = get_many(base, PUBLIC_VIEWS * 4)
        assert all(r.status_code == 200 for r in again)
        assert chdb.unit_count_queries - before == 1
        assert len({r.json()["as_of"] for r in answers + again}) == 1


def test_with_the_poller_running_queries_follow_ticks_not_requests(chdb: CountingStore) -> None:
    """Catches a poller that queries per request or per view instead of once per tick."""
    app = build(chdb, registry_with(), interval_s=0.5)
    with served(app) as base:
        get_many(base, PUBLIC_VIEWS[:1])
        before, started = chdb.unit_count_queries, time.monotonic()
        answers = [r for _ in range(8) for r in get_many(base, PUBLIC_VIEWS * 3)]
        ticks = (time.monotonic() - started) / 0.5
        assert all(r.status_code == 200 for r in answers)
        # However slow the machine: one query per tick (and the one under way), none per request.
        assert chdb.unit_count_queries - before <= ticks + 1


def test_a_new_live_connection_gets_its_first_event_without_a_store_query(
    chdb: CountingStore,
) -> None:
    """Catches /live querying the store per connection for its first snapshot (issue 23:
    1,000 screens connecting at once waited 13 s)."""
    app = build(chdb, registry_with())
    app.state.reads.close()
    with served(app) as base:
        get_many(base, PUBLIC_VIEWS[:1])  # the process holds the campaign's snapshot
        before = chdb.unit_count_queries
        for _ in range(5):
            event = first_event(base, f"/v1/campaigns/{CAMPAIGN}/live")
            assert event["event"] == "snapshot"
            assert event["totals"]["valid"] >= 3
        assert chdb.unit_count_queries == before


def test_an_unchanged_view_keeps_its_etag_and_answers_304(chdb: CountingStore) -> None:
    """Catches a missing or per-request ETag, If-None-Match ignored, or a tag that stays the
    same after the counts changed."""
    app = build(chdb, registry_with())
    reads = app.state.reads
    reads.close()
    path = f"/v1/campaigns/{CAMPAIGN}/leaderboard?level=unit"
    with served(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        first = client.get(path)
        tag = first.headers["etag"]
        assert tag.startswith('W/"') and first.headers["cache-control"] == "public, max-age=1"
        reads.tick()  # a new snapshot, same counts: a new as_of, the same tag
        second = client.get(path)
        assert second.json()["as_of"] != first.json()["as_of"]
        assert second.headers["etag"] == tag
        not_modified = client.get(path, headers={"if-none-match": tag})
        assert not_modified.status_code == 304 and not_modified.content == b""
        assert not_modified.headers["etag"] == tag
        assert client.get(path, headers={"if-none-match": '"other"'}).status_code == 200
        chdb.insert_judged([verdict()])
        reads.tick()
        changed = client.get(path, headers={"if-none-match": tag})
        assert changed.status_code == 200 and changed.headers["etag"] != tag
        assert _valid(changed.json()) == _valid(first.json()) + 1


def test_every_public_view_shows_a_counted_sheet_within_two_ticks(chdb: CountingStore) -> None:
    """Catches a read model that is never renewed, renewed too seldom, or a view cached past
    its snapshot (e.g. a rendered body kept across ticks)."""
    interval = 0.5
    app = build(chdb, registry_with(), interval_s=interval)
    with served(app) as base:
        before = {p: r.json() for p, r in zip(UNLIMITED_VIEWS, get_many(base, UNLIMITED_VIEWS),
                                                strict=True)}
        counted_at = dt.datetime.now(dt.UTC)
        chdb.insert_judged([verdict(unit="sh-uni", link="Sh9zY8xW", province="31",
                                    work_region="east")])
        deadline = time.monotonic() + 2 * interval + 5  # generous wall time; as_of is judged
        shown: dict[str, dt.datetime] = {}
        while len(shown) < len(UNLIMITED_VIEWS) and time.monotonic() < deadline:
            for path, r in zip(UNLIMITED_VIEWS, get_many(base, UNLIMITED_VIEWS), strict=True):
                body = r.json()
                if path not in shown and _shows_new_sheet(path, before[path], body):
                    shown[path] = dt.datetime.fromisoformat(body["as_of"])
            time.sleep(interval / 5)
        assert set(shown) == set(UNLIMITED_VIEWS)
        for path, as_of in shown.items():
            # The first snapshot read after the sheet was counted shows it, and one is read
            # at least every tick: within two ticks of counting.
            assert as_of - counted_at <= dt.timedelta(seconds=2 * interval), path


def _shows_new_sheet(path: str, before: dict[str, object], now: dict[str, object]) -> bool:
    if "totals" in now:  # the campaign view
        return now["totals"]["valid"] > before["totals"]["valid"]  # type: ignore[index,operator]
    return sum(r["valid"] for r in now["rows"]) > sum(  # type: ignore[attr-defined,index]
        r["valid"] for r in before["rows"]  # type: ignore[attr-defined,index]
    )


def test_metrics_show_snapshot_age_store_queries_cache_hits_and_screens(
    chdb: CountingStore,
) -> None:
    """Catches a read-side metric that is missing or never moves."""
    app = build(chdb, registry_with())
    app.state.reads.close()
    with served(app) as base:
        def metric(text: str, name: str) -> float:
            found = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                     if line.startswith(name) and not line.startswith("#")]
            assert found, name
            return max(found)

        start = httpx.get(f"{base}/metrics", headers=ADMIN).text
        get_many(base, PUBLIC_VIEWS * 2)
        r = httpx.get(f"{base}{PUBLIC_VIEWS[0]}")
        httpx.get(f"{base}{PUBLIC_VIEWS[0]}", headers={"if-none-match": r.headers["etag"]})
        with httpx.stream("GET", f"{base}/v1/campaigns/{CAMPAIGN}/live", timeout=30) as live:
            lines = live.iter_lines()  # kept: a dropped iterator closes the stream
            assert next(lines) == ": connected"
            during = httpx.get(f"{base}/metrics", headers=ADMIN).text
        assert metric(during, "survey_read_sse_clients") >= 1
        assert 0 <= metric(during, 'survey_read_snapshot_age_seconds{campaign="rs"}') < 60
        for name in ("survey_read_store_queries_total", "survey_read_view_cache_hits_total",
                     "survey_read_view_renders_total", "survey_read_not_modified_total"):
            assert metric(during, name) > metric(start, name), name
        assert metric(during, "survey_read_view_cache_hits_total") >= len(PUBLIC_VIEWS)
