"""Revocation on the distributed stack: two API processes (and the collector's /metrics) follow
the registry topic, so a token revoked through one is refused by all within 5 s; and no token or
token hash appears in any log of the run."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from core.access import token_sha256
from tests.helpers import campaign_definition
from tests.integration.distributed_stack import Stack, wait_until
from tests.integration.embedded_server import ADMIN, ADMIN_TOKEN, free_port

# Real servers on loopback: sockets allowed (tests/conftest.py).
pytestmark = pytest.mark.integration

CAMPAIGN = "acl-revoke"
REVOKED_WITHIN_S = 5.0


def test_revoked_token_refused_by_every_instance_within_5s(
    new_stack: Callable[..., Stack],
) -> None:
    stack = new_stack().start()
    second = f"http://127.0.0.1:{free_port()}"
    api2 = stack.role("api", "--port", second.rsplit(":", 1)[1], key="api2")
    def ready() -> bool:
        try:
            return api2.check_alive() and httpx.get(f"{second}/readyz", timeout=2).is_success
        except httpx.HTTPError:
            return False

    wait_until("second api ready", ready, 90)
    assert stack.define(campaign_definition(CAMPAIGN)).status_code == 200

    issued = []
    for role, campaign in (("analyst", CAMPAIGN), ("monitor", "*")):
        r = httpx.post(f"{stack.api_url}/v1/admin/tokens", headers=ADMIN, timeout=30,
                       json={"role": role, "campaign": campaign, "label": f"revoke {role}"})
        assert r.status_code == 201, r.text
        issued.append(r.json())
    analyst, monitor = issued
    reads = [f"{base}/v1/campaigns/{CAMPAIGN}/counts" for base in (stack.api_url, second)]
    metrics = [f"{stack.collector_url}/metrics", f"{stack.api_url}/metrics"]
    as_analyst = {"authorization": f"Bearer {analyst['token']}"}
    as_monitor = {"authorization": f"Bearer {monitor['token']}"}

    def statuses(urls: list[str], headers: dict[str, str]) -> set[int]:
        return {httpx.get(u, headers=headers, timeout=5).status_code for u in urls}

    # Issued through one instance: in force on all of them (the same follower path).
    wait_until("token known everywhere", lambda: statuses(reads, as_analyst) == {200}, 5)
    wait_until("monitor token known", lambda: statuses(metrics, as_monitor) == {200}, 5)
    assert statuses(metrics, {}) == {401}
    assert statuses(metrics, as_analyst) == {403}

    started = time.monotonic()
    for token in (analyst, monitor):
        r = httpx.delete(f"{second}/v1/admin/tokens/{token['token_id']}", headers=ADMIN)
        assert r.status_code == 200, r.text
    wait_until("revoked everywhere", lambda: statuses(reads, as_analyst) == {401}
               and statuses(metrics, as_monitor) == {401}, REVOKED_WITHIN_S, 0.05)
    assert time.monotonic() - started < REVOKED_WITHIN_S

    # Both instances agree on the audit trail too.
    trails = [httpx.get(f"{b}/v1/admin/audit", headers=ADMIN).json()["audit"]
              for b in (stack.api_url, second)]
    assert trails[0] == trails[1]
    assert {e["action"] for e in trails[0]} >= {"campaign.defined", "token.issued",
                                                "token.revoked"}

    # Failed attempts with wrong tokens, then: no secret or its hash in any log of the run.
    for base in (stack.api_url, second):
        httpx.get(f"{base}/v1/campaigns/{CAMPAIGN}/counts",
                  headers={"authorization": "Bearer sik_wrongwrongwrongwrongwrongwrongwrong"})
    stack.stop()
    logs = "\n".join(p.read_text(errors="replace") for p in stack.workdir.glob("*.log"))
    assert len(logs) > 1000, "the roles wrote no logs: the grep below would prove nothing"
    for secret in (analyst["token"], monitor["token"], ADMIN_TOKEN):
        assert secret not in logs
        assert token_sha256(secret) not in logs
        assert token_sha256(secret)[:16] not in logs
