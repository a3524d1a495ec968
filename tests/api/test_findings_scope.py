"""A coordinator's findings over real HTTP (uvicorn on a free port, the real chDB store): its
region's findings are found however many other regions have."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest

from api.app import build_api
from api.services import Services
from core.access import new_token, new_token_id, token_sha256
from schemas.access import Role
from schemas.campaign import CampaignDefinition
from schemas.events import Actor, FindingEvidence, FindingRaised, TokenIssued
from storage import open_store
from storage.findings import SqlFindings
from tests.api.support import ADMIN_TOKEN, CAMPAIGN, registry_with, served

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)
MORE_THAN_A_READ = 5001  # the campaign-wide cut the API used to read before its scope


def burst(fid: str, link: str, unit: str, raised_at: dt.datetime) -> FindingRaised:
    return FindingRaised(
        finding_id=fid, revision=1, anomaly="burst", detector_version="2026.1",
        campaign=CAMPAIGN, link_code=link, unit=unit, window_start=T0,
        window_end=T0 + dt.timedelta(hours=1), raised_at=raised_at, score=9.0,
        evidence=FindingEvidence(observed=50, expected=5.0, total=60, links=(link,),
                                 units=(unit,)),
    )


async def _no_definitions(definition: CampaignDefinition) -> None:
    return None


def test_a_coordinator_sees_all_of_its_regions_findings_past_other_regions_many(
    tmp_path: Path,
) -> None:
    """Catches the region filter applied after a campaign-wide limit (before the fix: the
    newest 5,000 findings of the campaign, then the region's among them): 5,001 findings in
    east, newer than south's 3, and a south coordinator still gets all 3."""
    with open_store(f"chdb://{tmp_path / 'chdb'}") as store:
        store.migrate()
        findings = SqlFindings(store)
        later = T0 + dt.timedelta(days=1)
        east = [burst(f"east{i:05d}", "Sh9zY8xW", "sh-uni", later + dt.timedelta(seconds=i))
                for i in range(MORE_THAN_A_READ)]
        south = [burst("south-gd", "Gd7kQ2xP", "gd-cyber", T0),
                 burst("south-gd2", "Gd7kQ2xQ", "gd-cyber", T0 + dt.timedelta(minutes=1)),
                 burst("south-gx", "Gx1aB2cD", "gx-net", T0 + dt.timedelta(minutes=2))]
        assert findings.insert_findings([*east, *south]) == MORE_THAN_A_READ + 3

        registry = registry_with()
        token = new_token()
        registry.apply(TokenIssued(
            token_id=new_token_id(), token_sha256=token_sha256(token), role=Role.coordinator,
            campaign=CAMPAIGN, work_region="south", label="south desk",
            issued_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
            by=Actor(token_id="test", label="test")))
        services = Services(
            registry=registry, store=store, admin_token=ADMIN_TOKEN,
            define_campaign=_no_definitions, ready=lambda: True)
        services.extra["findings"] = findings
        with served(build_api(services)) as base:
            r = httpx.get(f"{base}/v1/campaigns/{CAMPAIGN}/findings", params={"limit": 10},
                          headers={"authorization": f"Bearer {token}"}, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"] == {"work_region": "south"}
    assert [f["finding_id"] for f in body["findings"]] == ["south-gx", "south-gd2", "south-gd"]
