"""Scope arithmetic over real HTTP, in both runtimes: for random sheets, a unit token's /counts
totals equal its unit's leaderboard row, and a coordinator's equal its work region's row."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest

from tests.helpers import campaign_definition, sheet
from tests.integration.distributed_stack import wait_until
from tests.integration.embedded_server import ADMIN
from tests.security.support import Runtime

# Real servers on loopback: sockets allowed (tests/conftest.py).
pytestmark = pytest.mark.integration

CAMPAIGN = "acl-sums"
LINKS = ("Gd7kQ2xP", "Gd7kQ2xQ", "Gx1aB2cD", "Sh9zY8xW")
UNITS = {"gd-cyber": "south", "gx-net": "south", "sh-uni": "east"}


def random_sheets(seed: int, n: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        body = sheet(CAMPAIGN, rng.choice(LINKS))
        roll = rng.random()
        if roll < 0.2:
            body["answers"] = {**body["answers"], "q1": 9}  # invalid_answer
        elif roll < 0.3:
            body["started_at"] = body["submitted_at"]  # too_fast
        out.append(body)
    return out


@pytest.fixture(scope="module")
def urls(runtime: Runtime) -> tuple[str, str]:
    """(collector URL, API URL) of each runtime (tests/security/conftest.py), the campaign
    defined."""
    r = httpx.put(f"{runtime.api}/v1/admin/campaigns/{CAMPAIGN}",
                  json=campaign_definition(CAMPAIGN), headers=ADMIN, timeout=60)
    assert r.status_code == 200, r.text
    return runtime.collector, runtime.api


def totals(api: str, headers: dict[str, str]) -> dict[str, int]:
    r = httpx.get(f"{api}/v1/campaigns/{CAMPAIGN}/counts", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    row = r.json()["rows"][0]
    return {"valid": row["valid"], "rejected": row["rejected"]}


def board(api: str, level: str) -> dict[str, dict[str, int]]:
    r = httpx.get(f"{api}/v1/campaigns/{CAMPAIGN}/leaderboard", params={"level": level},
                  timeout=10)
    return {row["id"]: {"valid": row["valid"], "rejected": row["rejected"]}
            for row in r.json()["rows"]}


def bearer(api: str, **grant: str) -> dict[str, str]:
    r = httpx.post(f"{api}/v1/admin/tokens", headers=ADMIN, timeout=30,
                   json={"campaign": CAMPAIGN, "label": "sums", **grant})
    assert r.status_code == 201, r.text
    return {"authorization": f"Bearer {r.json()['token']}"}


@pytest.mark.parametrize("seed", [1, 2])
def test_scoped_counts_equal_their_leaderboard_rows(urls: tuple[str, str], seed: int) -> None:
    collector, api = urls
    before = sum(totals(api, ADMIN).values())
    bodies = random_sheets(seed, 80)
    for body in bodies:
        assert httpx.post(f"{collector}/v1/submissions", json=body, timeout=10).status_code == 202
    wait_until("every sheet judged and counted",
               lambda: sum(totals(api, ADMIN).values()) == before + len(bodies), 90, 0.3)
    # The leaderboard is a snapshot taken once a tick: wait until it has them too.
    counted = totals(api, ADMIN)
    wait_until("the leaderboard's snapshot has them",
               lambda: sum(u["valid"] for u in board(api, "unit").values()) == counted["valid"],
               30, 0.3)
    units, regions = board(api, "unit"), board(api, "work_region")
    for unit in UNITS:
        assert totals(api, bearer(api, role="unit", unit=unit)) == units[unit], unit
    for region in set(UNITS.values()):
        assert totals(api, bearer(api, role="coordinator", work_region=region)) == regions[region]
    # And the scopes add up to the whole campaign.
    assert sum(u["valid"] for u in units.values()) == totals(api, ADMIN)["valid"]
