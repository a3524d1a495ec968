"""A revoked link behind the stack's nginx micro-cache: its answers are refused from the moment
of revocation, and its page, cacheable for a short time, is gone from the cache within it.
Real `survey-ingest serve`, real nginx (infra/nginx/start.sh)."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.pages import PAGE_MAX_AGE_S
from tests.conftest import ROOT
from tests.helpers import campaign_definition, sheet, status_of, unavailable
from tests.integration.embedded_server import EmbeddedServer, free_port

pytestmark = pytest.mark.integration
CAMPAIGN = "rv"
LINK = "Gd7kQ2xQ"
MICROCACHE_S = 1


class Nginx:
    """infra/nginx/start.sh on a free port, in front of one embedded server."""

    def __init__(self, upstream: str, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "SURVEY_NGINX_PORT": str(self.port),
                    "SURVEY_NGINX_UPSTREAMS": upstream, "SURVEY_NGINX_WORKERS": "1",
                    "SURVEY_NGINX_MICROCACHE_S": str(MICROCACHE_S),
                    "SURVEY_INFRA_DATA": str(data_dir), "SURVEY_INFRA_TIMEOUT": "30"}

    def script(self, action: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(ROOT / "infra" / "nginx" / f"{action}.sh"), *args],
                              env=self.env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def behind_nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedServer,
                                                                            Nginx]]:
    tmp = tmp_path_factory.mktemp("revoked")
    server = EmbeddedServer(tmp / "data").start()
    nginx = Nginx(f"127.0.0.1:{server.port}", tmp / "infra")
    try:
        assert server.define(campaign_definition(CAMPAIGN)).status_code == 200
        started = nginx.script("start")
        if started.returncode != 0:
            unavailable(f"infra/nginx/start.sh failed: {started.stderr[-3000:]}")
        yield server, nginx
    finally:
        nginx.script("stop", "--wipe")
        server.stop()


def _twice(url: str) -> tuple[httpx.Response, httpx.Response, bool]:
    """Two GETs; whether the second came within the micro-cache time of the first's answer
    (a loaded machine may take longer: then the entry has expired, and nginx says so)."""
    first = httpx.get(url)
    answered = time.monotonic()
    second = httpx.get(url)
    return first, second, time.monotonic() - answered < MICROCACHE_S * 0.9


def test_public_reads_are_micro_cached_and_submissions_never(
    behind_nginx: tuple[EmbeddedServer, Nginx],
) -> None:
    """Catches a read route missing from the micro-cache, or a POST (or a token's read)
    answered from it."""
    _, nginx = behind_nginx
    for path in (f"/v1/campaigns/{CAMPAIGN}/leaderboard?level=province",
                 f"/v1/campaigns/{CAMPAIGN}/pacing", f"/s/{LINK}"):
        first, second, within = _twice(f"{nginx.url}{path}")
        assert first.status_code == second.status_code == 200, first.text
        assert second.headers["x-cache-status"] == ("HIT" if within else "EXPIRED"), path
        private = httpx.get(f"{nginx.url}{path}", headers={"authorization": "Bearer x"})
        assert private.headers["x-cache-status"] == "BYPASS"
    posted = [httpx.post(f"{nginx.url}/v1/submissions", json=sheet(CAMPAIGN)) for _ in range(2)]
    assert [r.status_code for r in posted] == [202, 202]
    assert all("x-cache-status" not in r.headers for r in posted)


def test_a_revoked_link_is_refused_at_once_and_its_page_gone_within_the_cache_time(
    behind_nginx: tuple[EmbeddedServer, Nginx],
) -> None:
    """Catches a revocation that waits for a cache (answers still counted), or a page cached
    longer than promised (a proxy or CDN serving it long after)."""
    server, nginx = behind_nginx
    # A URL of this test's own: its cache entry starts here, not in an earlier test.
    page_url = f"{nginx.url}/s/{LINK}?from={uuid.uuid4().hex}"
    page, again, within = _twice(page_url)
    assert page.status_code == again.status_code == 200
    assert page.headers["cache-control"] == f"public, max-age={PAGE_MAX_AGE_S}"
    assert again.headers["x-cache-status"] == ("HIT" if within else "EXPIRED")

    definition = campaign_definition(CAMPAIGN)
    for link in definition["links"]:  # type: ignore[union-attr]
        if link["code"] == LINK:
            link["revoked"] = True
    assert server.define(definition).status_code == 200

    body = sheet(CAMPAIGN, link_code=LINK)
    assert httpx.post(f"{nginx.url}/v1/submissions", json=body).status_code == 202
    verdict = status_of(server, CAMPAIGN, body["submission_id"])
    assert verdict["status"] == "rejected" and "revoked_link" in verdict["reasons"]

    assert httpx.get(f"{server.base}/s/{LINK}").status_code == 410  # the origin: at once
    time.sleep(MICROCACHE_S + 0.5)
    gone = httpx.get(page_url)
    assert gone.status_code == 410
