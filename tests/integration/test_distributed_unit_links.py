"""Units' own links on the distributed runtime (collector -> Kafka -> worker -> ClickHouse, the
API publishing link.issued / link.revoked on the registry topic): 409 past the plan, opens
counted into ClickHouse (the 0012 table on the session's server), a revoked link's later sheets
rejected by the worker, and a second API process folding the registry topic from scratch into
the same links and figures; then a replay of the raw log agrees with the live counts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.helpers import campaign_definition, sheet
from tests.integration.distributed_stack import Stack, wait_until
from tests.integration.embedded_server import ADMIN_TOKEN, free_port
from tests.integration.test_distributed_contract import verdict

pytestmark = pytest.mark.integration
CAMPAIGN = "c-dlinks"
AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def stack(new_stack: Callable[..., Stack]) -> Iterator[Stack]:
    s = new_stack(SURVEY_OPENS_FLUSH_SECONDS="0.5").start()
    yield s
    s.stop()


def links(url: str) -> dict[str, Any]:
    r = httpx.get(f"{url}/v1/campaigns/{CAMPAIGN}/units/gx-net/links", headers=AUTH, timeout=20)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_links_issued_revoked_counted_and_folded_again(stack: Stack) -> None:
    d = campaign_definition(CAMPAIGN)
    d["units"][1]["planned_links"] = 3  # gx-net: one link from the file, two to issue
    assert stack.define(d).status_code == 200
    api = stack.api_url
    base = f"{api}/v1/campaigns/{CAMPAIGN}/units/gx-net/links"
    r = httpx.post(base, json={"count": 2, "channel": "poster"}, headers=AUTH, timeout=40)
    assert r.status_code == 201, r.text
    kept, dropped = (lk["code"] for lk in r.json()["links"])
    over = httpx.post(base, json={"count": 1}, headers=AUTH, timeout=40)
    assert over.status_code == 409 and "0 more can be issued" in over.json()["detail"]

    for _ in range(3):
        assert httpx.get(f"{api}/s/{kept}", timeout=10).status_code == 200
        assert httpx.post(f"{api}/s/{kept}/open", timeout=10).status_code == 204
    good = sheet(CAMPAIGN, kept)
    stack.post_until_taken(good, 60)
    assert verdict(stack, CAMPAIGN, good["submission_id"])["status"] == "accepted"

    r = httpx.delete(f"{api}/v1/campaigns/{CAMPAIGN}/links/{dropped}", headers=AUTH, timeout=40)
    assert r.status_code == 200
    # The collector and worker follow the registry topic; a sheet after the revocation is
    # rejected once the worker has folded it (bounded wait, then judged as it stands).
    late = sheet(CAMPAIGN, dropped)
    stack.post_until_taken(late, 60)
    judged = verdict(stack, CAMPAIGN, late["submission_id"])
    assert judged["status"] == "rejected" and "revoked_link" in judged["reasons"]

    def flushed() -> bool:  # the API's tally reaches ClickHouse within a flush interval
        counts = httpx.get(f"{api}/v1/campaigns/{CAMPAIGN}/counts",
                           params={"by": "link", "unit": "gx-net"}, headers=AUTH,
                           timeout=10).json()
        return any(r_["link"] == kept and r_["opens"] == 3 for r_ in counts["rows"])

    wait_until("opens in the counts", flushed, 30)
    live = links(api)
    row = {lk["code"]: lk for lk in live["links"]}
    assert (row[kept]["opens"], row[kept]["valid"], row[kept]["revoked"]) == (3, 1, False)
    assert (row[dropped]["rejected"], row[dropped]["revoked"]) == (1, True)

    # A second API process folds the registry topic from its start: same links, same figures
    # (opens from ClickHouse, where the first one flushed them).
    port = free_port()
    second = stack.role("api", "--port", str(port), key="api2")
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return second.check_alive() and httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until("second api ready", ready, 90)
    assert links(url) == {**live}

    result = stack.run("replay", "--into-database", f"{stack.database}_replay")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    mine = next(x for x in lines if x.get("campaign") == CAMPAIGN)
    assert mine["replay"] == mine["live"] and mine["units_differing"] == []
