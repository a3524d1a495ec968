"""Findings end to end through a real `survey-ingest serve`: a copy-paste opinion ring posted
through two links is found, shown by the API with its evidence, counted in /metrics, and the
counts are those of the verdicts alone."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulation.padding import RING_TEMPLATES, _edit, honest_text
from tests.helpers import campaign_definition, sheet
from tests.integration.embedded_server import ADMIN, EmbeddedServer

# Real servers on loopback: sockets allowed (tests/conftest.py).
pytestmark = pytest.mark.integration

CAMPAIGN = "c-findings"
RING_LINKS = ("Gd7kQ2xP", "Gx1aB2cD")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    srv = EmbeddedServer(tmp_path_factory.mktemp("findings") / "data",
                         env={"SURVEY_TRUSTED_PROXIES": '["127.0.0.1"]'}).start()
    try:
        yield srv
    finally:
        srv.kill()


def _findings(
    server: EmbeddedServer, campaign: str = CAMPAIGN, **params: str
) -> list[dict[str, Any]]:
    r = httpx.get(f"{server.base}/v1/campaigns/{campaign}/findings", params=params,
                  headers=ADMIN, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["campaign"] == campaign
    return list(body["findings"])


@pytest.fixture(scope="module")
def posted(server: EmbeddedServer) -> dict[str, list[dict[str, Any]]]:
    assert server.define(campaign_definition(CAMPAIGN)).status_code == 200
    rng = random.Random(5)
    honest = [sheet(CAMPAIGN, rng.choice(("Gd7kQ2xP", "Gd7kQ2xQ", "Gx1aB2cD", "Sh9zY8xW")),
                    opinion=honest_text(rng)) for _ in range(20)]
    ring = [sheet(CAMPAIGN, RING_LINKS[i % 2], opinion=_edit(rng, RING_TEMPLATES[0]))
            for i in range(12)]
    for body in [*honest, *ring]:
        r = httpx.post(f"{server.base}/v1/submissions", json=body, timeout=10)
        assert r.status_code == 202, r.text
    return {"honest": honest, "ring": ring}


def _wait_for_findings(
    server: EmbeddedServer, campaign: str = CAMPAIGN, timeout: float = 60, **params: str
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = _findings(server, campaign, **params)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_an_opinion_ring_reaches_the_api_with_its_evidence(
    server: EmbeddedServer, posted: dict[str, list[dict[str, Any]]]
) -> None:
    found = _wait_for_findings(server)
    assert [f["kind"] for f in found] == ["text_near_duplicate"], found
    (ring,) = found
    ring_ids = {b["submission_id"] for b in posted["ring"]}
    evidence = ring["evidence"]
    assert evidence["observed"] >= 10 and set(evidence["sample_submission_ids"]) <= ring_ids
    assert set(evidence["links"]) == set(RING_LINKS)
    assert ring["link"] is None and ring["window_start"] <= ring["raised_at"]
    assert _findings(server, link="Gx1aB2cD") == [ring]
    assert _findings(server, unit="gx-net") == [ring]
    assert _findings(server, kind="burst") == []
    assert _findings(server, link="Sh9zY8xW") == []
    unknown = httpx.get(f"{server.base}/v1/campaigns/nope/findings", headers=ADMIN, timeout=10)
    assert unknown.status_code == 404
    bad = httpx.get(f"{server.base}/v1/campaigns/{CAMPAIGN}/findings",
                    params={"kind": "nonsense"}, headers=ADMIN, timeout=10)
    assert bad.status_code == 422


def test_findings_are_metrics_and_never_change_counts(
    server: EmbeddedServer, posted: dict[str, list[dict[str, Any]]]
) -> None:
    assert _wait_for_findings(server)
    metrics = httpx.get(f"{server.base}/metrics", headers=ADMIN, timeout=10).text
    assert 'survey_findings_total{kind="text_near_duplicate"} 1.0' in metrics
    assert 'survey_findings_total{kind="burst"} 0.0' in metrics
    statuses = []
    for body in [*posted["honest"], *posted["ring"]]:
        r = httpx.get(
            f"{server.base}/v1/campaigns/{CAMPAIGN}/submissions/{body['submission_id']}",
            timeout=10,
        )
        assert r.status_code == 200, r.text
        statuses.append(r.json()["status"])
    assert statuses.count("accepted") == len(statuses)  # the ring's sheets are valid verdicts
    board = httpx.get(f"{server.base}/v1/campaigns/{CAMPAIGN}/leaderboard", timeout=10).json()
    assert sum(row["valid"] for row in board["rows"]) == len(statuses)


def test_sheets_from_one_network_are_found_through_the_collectors_prefix_hash(
    server: EmbeddedServer,
) -> None:
    campaign = "c-network"
    assert server.define(campaign_definition(campaign)).status_code == 200
    rng = random.Random(9)

    def post(body: dict[str, Any], address: str) -> None:
        r = httpx.post(f"{server.base}/v1/submissions", json=body, timeout=10,
                       headers={"x-forwarded-for": address})
        assert r.status_code == 202, r.text

    # The rest of the campaign first (the reference a link is compared with), from many networks.
    for _ in range(520):
        post(sheet(campaign, rng.choice(("Gd7kQ2xQ", "Gx1aB2cD", "Sh9zY8xW"))),
             f"10.{rng.randrange(200)}.{rng.randrange(200)}.{rng.randint(1, 254)}")
    # Then one /24 behind a link: 45 sheets, so one clock hour holds at least 23 of them.
    padded = [sheet(campaign, "Gd7kQ2xP") for _ in range(45)]
    for body in padded:
        post(body, f"203.0.113.{rng.randint(1, 254)}")
    found = _wait_for_findings(server, campaign, kind="network_cluster")
    assert found, _findings(server, campaign)
    assert {f["link"] for f in found} == {"Gd7kQ2xP"}
    evidence = found[0]["evidence"]
    assert evidence["observed"] >= 20 and len(evidence["network"]) == 32  # a keyed hash
    assert set(evidence["sample_submission_ids"]) <= {b["submission_id"] for b in padded}
    assert "203.0.113" not in str(found)
