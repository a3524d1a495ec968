"""Abuse controls through a real serve process: rate limits, proxies, shedding, admin, CORS."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import hmac
import itertools
import time
from typing import Any

import httpx
import pytest

from core.access import Authenticator, Denied, token_sha256
from core.registry import Registry
from ingest.collector import Collector
from schemas.access import Role
from tests.helpers import campaign_definition, sheet
from tests.integration.embedded_server import EmbeddedServer
from tests.security.support import ALLOWED_ORIGIN, CAMPAIGN, status_of

# Real servers on loopback: sockets allowed (tests/conftest.py).
pytestmark = pytest.mark.integration

_ips = (f"198.51.100.{i}" for i in itertools.count(1))


def post(
    server: EmbeddedServer,
    body: dict[str, Any],
    client_ip: str | None = None,
    headers: dict[str, str] | None = None,
    http: httpx.Client | None = None,
) -> httpx.Response:
    h = dict(headers or {})
    if client_ip is not None:
        h["x-forwarded-for"] = client_ip
    return (http or httpx).post(f"{server.base}/v1/submissions", json=body, headers=h, timeout=10)


def assert_rate_limited(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"] == "application/json"
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["detail"]


def test_per_ip_limit_answers_429_with_retry_after(server: EmbeddedServer) -> None:
    ip = next(_ips)
    statuses = []
    for i in range(4):
        r = post(server, sheet(CAMPAIGN, link_code=f"ip-limit-{i}"), ip)
        statuses.append(r.status_code)
        last = r
    assert statuses[:2] == [202, 202], statuses  # the burst
    assert 429 in statuses[2:], statuses
    assert_rate_limited(last if last.status_code == 429 else r)


def test_rate_limited_sheet_is_not_stored(server: EmbeddedServer) -> None:
    ip = next(_ips)
    refused = []
    for i in range(5):
        body = sheet(CAMPAIGN, link_code=f"ip-store-{i}")
        if post(server, body, ip).status_code == 429:
            refused.append(body["submission_id"])
    assert refused
    ok = sheet(CAMPAIGN, link_code="ip-store-other")
    assert post(server, ok, next(_ips)).status_code == 202
    status_of(server, ok["submission_id"])  # the processor has caught up past the refusals
    for sid in refused:
        r = httpx.get(f"{server.base}/v1/campaigns/{CAMPAIGN}/submissions/{sid}", timeout=10)
        assert r.status_code == 404, r.text


def test_per_link_limit_applies_across_clients(server: EmbeddedServer) -> None:
    statuses = [
        post(server, sheet(CAMPAIGN, link_code="link-limit"), next(_ips)).status_code
        for _ in range(8)
    ]
    assert statuses[:4] == [202] * 4, statuses  # burst of 2/s * 2
    assert 429 in statuses[4:], statuses
    # Another link is unaffected.
    assert post(server, sheet(CAMPAIGN, link_code="link-free"), next(_ips)).status_code == 202


def test_behind_trusted_proxy_the_forwarded_client_is_limited(server: EmbeddedServer) -> None:
    limited_ip, other_ip = next(_ips), next(_ips)
    codes = [
        post(server, sheet(CAMPAIGN, link_code=f"xff-{i}"), limited_ip).status_code
        for i in range(4)
    ]
    assert 429 in codes, codes
    # The proxy's own address (127.0.0.1) is not what is limited: another client through it is fine.
    assert post(server, sheet(CAMPAIGN, link_code="xff-other"), other_ip).status_code == 202
    # Spoofed hops left of the real client do not help: the right-most untrusted hop is the client.
    r = post(server, sheet(CAMPAIGN, link_code="xff-spoof"), f"10.9.9.9, {limited_ip}")
    assert r.status_code == 429, r.text


def test_untrusted_peer_forwarded_header_is_ignored(server: EmbeddedServer) -> None:
    # 127.0.0.2 is loopback too, but not in SURVEY_TRUSTED_PROXIES: its X-Forwarded-For is a lie.
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2")) as http:
        codes = [
            post(server, sheet(CAMPAIGN, link_code=f"untrusted-{i}"), next(_ips), http=http)
            .status_code
            for i in range(4)
        ]
    assert codes[:2] == [202, 202] and 429 in codes[2:], codes


def test_in_flight_bound_sheds_with_503_and_stores_nothing_shed(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    srv = EmbeddedServer(
        tmp_path_factory.mktemp("inflight") / "data", env={"SURVEY_MAX_IN_FLIGHT": "1"}
    ).start()
    try:
        assert srv.define(campaign_definition("flight")).status_code == 200
        bodies = [sheet("flight", link_code=f"fl-{i}") for i in range(48)]
        with (
            httpx.Client(limits=httpx.Limits(max_connections=48)) as http,
            concurrent.futures.ThreadPoolExecutor(16) as pool,
        ):
            results = list(
                pool.map(lambda b: (b["submission_id"], post(srv, b, http=http)), bodies)
            )
        shed = [sid for sid, r in results if r.status_code == 503]
        taken = [sid for sid, r in results if r.status_code == 202]
        assert len(shed) + len(taken) == len(bodies), [r.status_code for _, r in results]
        assert shed, "no request was shed at max_in_flight=1"
        for _, r in results:
            if r.status_code == 503:
                assert r.json()["detail"] and r.headers["retry-after"]
        for sid in taken:
            assert status_of(srv, sid, "flight")["status"] in {"accepted", "rejected"}
        for sid in shed:
            r = httpx.get(f"{srv.base}/v1/campaigns/flight/submissions/{sid}", timeout=10)
            assert r.status_code == 404, r.text
    finally:
        srv.kill()


# -- admin token ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", "Bearer", "Basic dGVzdA==", "Bearer test-admin-token-and-more"],
)
def test_admin_refuses_missing_or_wrong_token(
    server: EmbeddedServer, authorization: str | None
) -> None:
    headers = {"authorization": authorization} if authorization is not None else {}
    r = httpx.put(
        f"{server.base}/v1/admin/campaigns/{CAMPAIGN}",
        json=campaign_definition(CAMPAIGN), headers=headers, timeout=10,
    )
    assert r.status_code == 401, r.text
    assert r.json()["detail"]


def test_admin_token_is_compared_by_hash_never_as_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches a string compare of the secret (timing leaks its prefix): only sha256 digests
    ever reach compare_digest, and an unset admin token matches nothing, not even ""."""
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # the module core.access calls it through
    auth = Authenticator(Registry(), "s3cret")
    now = dt.datetime.now(dt.UTC)
    assert auth.caller("s3cret", now).role is Role.admin
    with pytest.raises(Denied) as refused:
        auth.caller("s3creT", now)
    assert refused.value.status == 401
    assert calls == [(token_sha256("s3cret"), token_sha256("s3cret")),
                     (token_sha256("s3creT"), token_sha256("s3cret"))]
    with pytest.raises(Denied):
        Authenticator(Registry(), "").caller("", now)


# -- CORS ----------------------------------------------------------------------------------------


def test_cors_preflight_from_allowed_origin(server: EmbeddedServer) -> None:
    r = httpx.options(
        f"{server.base}/v1/submissions",
        headers={
            "origin": ALLOWED_ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
        timeout=10,
    )
    assert r.status_code == 204, r.text
    assert r.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "content-type" in r.headers["access-control-allow-headers"].lower()
    assert int(r.headers["access-control-max-age"]) > 0


def test_cors_post_from_allowed_origin_carries_allow_origin(server: EmbeddedServer) -> None:
    r = post(server, sheet(CAMPAIGN, link_code="cors-ok"), next(_ips), {"origin": ALLOWED_ORIGIN})
    assert r.status_code == 202, r.text
    assert r.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "origin" in r.headers["vary"].lower()
    # Errors too, so the page can read the JSON detail.
    r = post(server, {"not": "a sheet"}, next(_ips), {"origin": ALLOWED_ORIGIN})
    assert r.status_code == 422 and r.headers["access-control-allow-origin"] == ALLOWED_ORIGIN


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "https://answer.example.cn.evil.example", "null"]
)
def test_cors_other_origins_get_no_cors_headers(server: EmbeddedServer, origin: str) -> None:
    pre = httpx.options(
        f"{server.base}/v1/submissions",
        headers={"origin": origin, "access-control-request-method": "POST"},
        timeout=10,
    )
    assert pre.status_code != 204
    assert "access-control-allow-origin" not in pre.headers
    r = post(server, sheet(CAMPAIGN, link_code="cors-other"), next(_ips), {"origin": origin})
    assert "access-control-allow-origin" not in r.headers
    assert "access-control-allow-methods" not in r.headers


def test_cors_is_off_the_hot_path_when_no_origins_are_configured() -> None:
    class NoLog:
        def healthy(self) -> bool:
            return True

    collector = Collector(NoLog(), dict, hash_key="k")  # type: ignore[arg-type]
    assert collector.cors is None
    assert Collector(NoLog(), dict, hash_key="k", cors_origins=[ALLOWED_ORIGIN]).cors is not None  # type: ignore[arg-type]


def test_retry_after_tracks_the_refill(server: EmbeddedServer) -> None:
    ip = next(_ips)
    while post(server, sheet(CAMPAIGN, link_code="refill"), ip).status_code != 429:
        pass
    time.sleep(1.1)  # 1 request/s: a token is back
    assert post(server, sheet(CAMPAIGN, link_code="refill-2"), ip).status_code == 202
