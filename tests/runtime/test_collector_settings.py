"""Every collector setting takes effect on both runtimes: one wiring (`Collector.from_settings`).

The distributed collector once built its own `Collector` and left `cors_origins` out, so an
answering page on another origin could post to `serve` but not to the stack. These tests run
the same requests against `survey-ingest serve` and against the distributed `collector` role,
both configured only through SURVEY_* variables.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import campaign_definition
from tests.integration.distributed_stack import Stack, wait_until
from tests.integration.embedded_server import EmbeddedServer

pytestmark = pytest.mark.integration

ORIGIN = "https://answer.example.cn"
CAMPAIGN = "settings-2026"
ENV = {
    "SURVEY_CORS_ORIGINS": json.dumps([ORIGIN]),
    "SURVEY_RATE_LIMIT_PER_IP": "0.5",  # a burst of 1, then 429
    "SURVEY_TRUSTED_PROXIES": json.dumps(["127.0.0.1"]),
}


def _sheet(campaign: str) -> dict[str, object]:
    return {
        "submission_id": str(uuid.uuid4()), "campaign": campaign, "link_code": "Gd7kQ2xP",
        "questionnaire_version": "2023.1",
        "started_at": "2026-11-20T10:01:02+08:00", "submitted_at": "2026-11-20T10:09:40+08:00",
        "respondent": {"province": "44"}, "answers": {"q1": 4},
    }


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def collector_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "embedded":
        server = EmbeddedServer(tmp_path_factory.mktemp("serve") / "data", env=ENV).start()
        try:
            assert server.define(campaign_definition(CAMPAIGN)).status_code == 200
            yield server.base
        finally:
            server.stop()
        return
    new_stack: Callable[..., Stack] = request.getfixturevalue("new_stack")
    stack = new_stack(**ENV)
    migrated = stack.run("migrate")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    stack.role("api", "--port", str(stack.api_port))
    stack.role("collector", "--port", str(stack.collector_port))
    for name, url in (("api", stack.api_url), ("collector", stack.collector_url)):
        wait_until(f"{name} ready", lambda url=url: _ready(url), 90)
    assert stack.define(campaign_definition(CAMPAIGN)).status_code == 200
    # The collector knows the campaign once its registry follower applied it.
    wait_until("campaign known", lambda: _post(stack.collector_url, "10.9.0.1").status_code
               == 202, 60)
    yield stack.collector_url


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _post(base: str, client_ip: str, origin: str | None = None) -> httpx.Response:
    headers = {"x-forwarded-for": client_ip}
    if origin:
        headers["origin"] = origin
    return httpx.post(f"{base}/v1/submissions", json=_sheet(CAMPAIGN), headers=headers, timeout=20)


def test_cross_origin_preflight_is_answered_for_the_configured_origin(collector_url: str) -> None:
    r = httpx.options(
        f"{collector_url}/v1/submissions",
        headers={"origin": ORIGIN, "access-control-request-method": "POST",
                 "access-control-request-headers": "content-type"},
        timeout=10,
    )
    assert r.status_code in (200, 204), r.text
    assert r.headers.get("access-control-allow-origin") == ORIGIN


def test_cross_origin_post_carries_its_allow_origin(collector_url: str) -> None:
    r = _post(collector_url, "10.9.1.1", ORIGIN)
    assert r.status_code == 202, r.text
    assert r.headers.get("access-control-allow-origin") == ORIGIN
    other = _post(collector_url, "10.9.1.2", "https://elsewhere.example")
    assert "access-control-allow-origin" not in other.headers


def test_rate_limit_per_ip_and_trusted_proxy_take_effect(collector_url: str) -> None:
    """A client named by the trusted proxy is limited on its own address (burst 1): the
    second sheet within the second is 429 with Retry-After, while another client still posts."""
    first = _post(collector_url, "10.9.2.1")
    second = _post(collector_url, "10.9.2.1")
    assert first.status_code == 202, first.text
    assert second.status_code == 429 and int(second.headers["retry-after"]) >= 1
    assert _post(collector_url, "10.9.2.2").status_code == 202


def test_settings_test_covers_every_collector_setting() -> None:
    """A new Settings field the collector reads must be added to ENV above (and so tested)."""
    source = (Path(__file__).resolve().parents[2] / "ingest" / "collector.py").read_text()
    wiring = source[source.index("def from_settings"):source.index("async def __call__")]
    read = set(re.findall(r"settings\.(\w+)", wiring))
    tested = {name.removeprefix("SURVEY_").lower() for name in ENV}
    # Tested elsewhere: the hash key (tests/security), the in-flight bound and the per-link limit
    # (tests/security/test_security_abuse.py), failed-auth limiting (test_access_rate_limit.py).
    covered = {"hash_key", "max_in_flight", "rate_limit_per_link", "auth_failures_per_minute"}
    assert read - covered <= tested, read - tested
