"""Failed authentication is rate limited per client: past the limit, 429 with Retry-After; and
an open event stream ends once its caller is refused (its token revoked, or its campaign turned
private). (In this order: the limit, once hit, holds for every credential from this client, the
admin's too.)"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import campaign_definition
from tests.integration.embedded_server import ADMIN, EmbeddedServer

# Real servers on loopback: sockets allowed (tests/conftest.py).
pytestmark = pytest.mark.integration

CAMPAIGN = "acl-limit"
LIMIT = 5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    srv = EmbeddedServer(tmp_path_factory.mktemp("limit") / "data",
                         env={"SURVEY_AUTH_FAILURES_PER_MINUTE": str(LIMIT)}).start()
    try:
        assert srv.define(campaign_definition(CAMPAIGN)).status_code == 200
        yield srv
    finally:
        srv.stop()


def test_an_open_live_stream_ends_once_its_token_is_revoked(server: EmbeddedServer) -> None:
    """Catches a check made only at connect: an SSE stream opened with a token stops at the
    next event or keep-alive (15 s at most) after the token is revoked."""
    import time

    r = httpx.post(f"{server.base}/v1/admin/tokens", headers=ADMIN, timeout=30,
                   json={"role": "analyst", "campaign": CAMPAIGN, "label": "screen"})
    issued = r.json()
    url = f"{server.base}/v1/campaigns/{CAMPAIGN}/live"
    with httpx.stream("GET", url, headers={"authorization": f"Bearer {issued['token']}"},
                      timeout=httpx.Timeout(30, read=25)) as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()
        assert next(lines) == ": connected"
        httpx.delete(f"{server.base}/v1/admin/tokens/{issued['token_id']}", headers=ADMIN)
        started = time.monotonic()
        for _ in lines:  # the snapshot may already be on its way; then the stream ends
            assert time.monotonic() - started < 20
    assert time.monotonic() - started < 20


def test_an_open_anonymous_live_stream_ends_once_its_campaign_turns_private(
    server: EmbeddedServer,
) -> None:
    """Catches a check made only at connect for screens without a token (before the fix only
    streams opened with a token were checked again): a public campaign's SSE stream stops at
    the next event or keep-alive (15 s at most) after `visibility: {leaderboard: private}` is
    put in force, as a new connection is refused at once."""
    import time

    definition = campaign_definition(f"{CAMPAIGN}-turns-private")
    assert server.define(definition).status_code == 200
    url = f"{server.base}/v1/campaigns/{definition['campaign']}/live"
    with httpx.stream("GET", url, timeout=httpx.Timeout(30, read=25)) as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()
        assert next(lines) == ": connected"
        definition["visibility"] = {"leaderboard": "private"}
        assert server.define(definition).status_code == 200
        assert httpx.get(url, timeout=10).status_code == 401  # a new screen: refused
        started = time.monotonic()
        for _ in lines:  # the snapshot may already be on its way; then the stream ends
            assert time.monotonic() - started < 20, "the stream went on after going private"
    assert time.monotonic() - started < 20


def test_guessing_tokens_is_answered_429_with_retry_after(server: EmbeddedServer) -> None:
    """Catches an unlimited oracle for guessing tokens: after LIMIT wrong tokens from one
    client, every credential it presents (even a right one) is 429 until the window passes,
    while a request without any credential is still a plain 401."""
    url = f"{server.base}/v1/campaigns/{CAMPAIGN}/counts"
    r = httpx.post(f"{server.base}/v1/admin/tokens", headers=ADMIN, timeout=30,
                   json={"role": "analyst", "campaign": CAMPAIGN, "label": "limit"})
    good = {"authorization": f"Bearer {r.json()['token']}"}
    assert httpx.get(url, headers=good).status_code == 200
    for i in range(LIMIT):
        wrong = httpx.get(url, headers={"authorization": f"Bearer sik_guess{i:040d}"})
        assert wrong.status_code == 401, (i, wrong.text)
    limited = httpx.get(url, headers={"authorization": "Bearer sik_guess-again"})
    assert limited.status_code == 429 and limited.json()["detail"]
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert httpx.get(url, headers=good).status_code == 429
    assert httpx.get(url).status_code == 401
    # The sign-in form counts against the same limit.
    with httpx.Client(base_url=server.base) as client:
        client.get("/portal")
        r = client.post("/portal/session", data={"token": "sik_x",
                                                 "csrf": client.cookies["si_csrf"]})
        assert r.status_code == 429 and r.headers["retry-after"]

