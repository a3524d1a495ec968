"""What caches and clients are told: compression when asked, immutable hashed assets, a
self-hosted /docs, and the answering page cacheable per link for a short time (over real HTTP,
in process)."""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Iterator

import brotli
import httpx
import pytest
import zstandard

from api.pages import PAGE_MAX_AGE_S
from tests.api.support import ADMIN, CAMPAIGN, build, registry_with, served

# They serve the API over real HTTP (uvicorn on a free port) and the models read the real
# store: a service, declared as such (sockets are blocked for tests that declare none).
pytestmark = pytest.mark.integration

class _NoCounts:
    def unit_counts(self, campaign: str) -> dict[str, object]:
        return {}


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with served(build(_NoCounts(), registry_with())) as url:  # type: ignore[arg-type]
        yield url


COMPRESSIBLE = ["/s/Gd7kQ2xP", f"/v1/campaigns/{CAMPAIGN}", "/openapi.json", "/static/survey.js"]
DECODE = {"gzip": gzip.decompress, "br": brotli.decompress,
          "zstd": lambda b: zstandard.ZstdDecompressor().decompressobj().decompress(b)}


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
@pytest.mark.parametrize("path", COMPRESSIBLE)
def test_bodies_over_a_kilobyte_are_compressed_when_asked(
    base: str, path: str, encoding: str
) -> None:
    """Catches the compression middleware missing, or an encoding the client asked for not
    served."""
    # The campaign's full view (an admin's: with its questionnaire) is well over a kilobyte.
    who = ADMIN if path.startswith("/v1/campaigns/") else {}
    plain = httpx.get(f"{base}{path}", headers={"accept-encoding": "identity", **who}).content
    with httpx.stream("GET", f"{base}{path}", headers={"accept-encoding": encoding, **who}) as r:
        raw = b"".join(r.iter_raw())
    assert r.status_code == 200
    assert r.headers["content-encoding"] == encoding
    assert "accept-encoding" in r.headers["vary"].lower()
    assert len(raw) < len(plain) / 2
    decoded = DECODE[encoding](raw)
    # The campaign view's as_of may have ticked between the two requests.
    assert decoded == plain or re.sub(rb'"as_of":"[^"]+"', b"", decoded) == re.sub(
        rb'"as_of":"[^"]+"', b"", plain)


@pytest.mark.parametrize("path", COMPRESSIBLE)
def test_nothing_is_compressed_unless_asked(base: str, path: str) -> None:
    """Catches compression forced on clients that did not ask for it."""
    for headers in ({"accept-encoding": "identity"}, {"accept-encoding": "gzip;q=0"}):
        r = httpx.get(f"{base}{path}", headers=headers)
        assert r.status_code == 200 and "content-encoding" not in r.headers


def test_pages_name_their_assets_by_content_hash_and_those_are_immutable(base: str) -> None:
    """Catches assets served under plain names from the pages, a name whose hash is not of the
    bytes behind it, or a short cache lifetime for a hashed name."""
    page = httpx.get(f"{base}/s/Gd7kQ2xP").text
    urls = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    assert len(urls) == 2
    for url in urls:
        stem_hash = re.fullmatch(r"/static/[a-z-]+\.([0-9a-f]{12})\.(js|css)", url)
        assert stem_hash, url
        r = httpx.get(f"{base}{url}", headers={"accept-encoding": "identity"})
        assert r.status_code == 200
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert hashlib.sha256(r.content).hexdigest()[:12] == stem_hash.group(1)
        again = httpx.get(f"{base}{url}", headers={"if-none-match": r.headers["etag"]})
        assert again.status_code == 304
    plain = httpx.get(f"{base}/static/survey.js")
    assert plain.status_code == 200 and "immutable" not in plain.headers["cache-control"]
    assert httpx.get(f"{base}/static/survey.0123456789ab.js").status_code == 404


def test_docs_load_everything_from_this_server(base: str) -> None:
    """Catches /docs pulling Swagger UI from a CDN (unreachable on an intranet)."""
    html = httpx.get(f"{base}/docs").text
    external = re.findall(r'(?:src|href)="(https?://[^"]+)"', html)
    assert external == []
    urls = re.findall(r"""(?:src|href)=["'](/static/[^"']+)["']""", html)
    urls += re.findall(r"""url: ?['"](/[^'"]+)['"]""", html)
    assert any("swagger-ui-bundle" in u for u in urls) and any(".css" in u for u in urls)
    for url in urls:
        r = httpx.get(f"{base}{url}")
        assert r.status_code == 200, url
    assert httpx.get(f"{base}/openapi.json").status_code == 200


def test_the_answering_page_may_be_cached_for_a_short_time_per_link(base: str) -> None:
    """Catches `no-store` left on the answering page (every view reaching the origin), or a
    lifetime long enough that a revoked link's page outlives the promise."""
    r = httpx.get(f"{base}/s/Gd7kQ2xP")
    assert r.headers["cache-control"] == f"public, max-age={PAGE_MAX_AGE_S}"
    assert PAGE_MAX_AGE_S <= 10
    revoked = httpx.get(f"{base}/s/Sh9zY8xR")
    assert revoked.status_code == 410
    unknown = httpx.get(f"{base}/s/NoSuch12")
    assert unknown.status_code == 404 and unknown.headers["cache-control"] == "no-store"
