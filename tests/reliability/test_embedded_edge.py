"""At the edge of `survey-ingest serve`: numbers JSON cannot hold are refused with a clear 422, and
phone and ID-card numbers are masked before anything is written, the raw log included."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.envelope import NON_FINITE_DETAIL
from tests.helpers import campaign_definition, sheet
from tests.integration.embedded_server import EmbeddedServer

# Real servers on loopback: sockets allowed (tests/conftest.py).
pytestmark = pytest.mark.integration

CAMPAIGN = "rel-edge"
PHONE = "13812345678"
PHONE_SPACED = "139-8765-4321"
ID_CARD = "44010619900307123X"
MARKER = "marker-7c1e9d-opinion"  # ordinary text beside the numbers: proves the search finds text

# (where the number goes, the JSON literal): NaN and the infinities are not JSON at all; 1e400 and
# a 400-digit integer are JSON but beyond any float (1e400 parses as an infinity).
NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e400", "-1E+400", "1" + "0" * 400]
PLACES = ["answer", "answer_list", "respondent_extra", "extra_field"]
# Where the error says the number is: the exact path, wherever in the body it is.
LOCS = {
    "answer": ["answers", "s1"],
    "answer_list": ["answers", "q3", "1"],
    "respondent_extra": ["respondent", "score", "raw", "1"],
    "extra_field": ["meta"],
}


def body_with(literal: str, place: str) -> tuple[str, bytes]:
    """A valid sheet with `literal` spliced in as a raw JSON number at `place`."""
    body = sheet(CAMPAIGN)
    marker = "__NUMBER__"
    if place == "answer":
        body["answers"]["s1"] = marker
    elif place == "answer_list":
        body["answers"]["q3"] = ["a", marker]
    elif place == "respondent_extra":
        body["respondent"]["score"] = {"raw": [1, marker]}
    else:
        body["meta"] = marker
    raw = json.dumps(body, ensure_ascii=False).replace(f'"{marker}"', literal)
    return body["submission_id"], raw.encode()


def post_raw(base: str, content: bytes) -> httpx.Response:
    return httpx.post(f"{base}/v1/submissions", content=content,
                      headers={"content-type": "application/json"}, timeout=20)


def verdict(base: str, sid: str, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        r = httpx.get(f"{base}/v1/campaigns/{CAMPAIGN}/submissions/{sid}", timeout=10)
        if r.status_code == 200 and r.json()["status"] != "received":
            return dict(r.json())
        if time.monotonic() > deadline:
            raise AssertionError(f"no verdict for {sid} within {timeout_s} s: {r.text}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    srv = EmbeddedServer(tmp_path_factory.mktemp("rel-edge") / "data").start()
    try:
        assert srv.define(campaign_definition(CAMPAIGN)).status_code == 200
        yield srv
    finally:
        srv.kill()


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("literal", NON_FINITE)
def test_non_finite_number_is_refused_with_a_clear_detail(
    server: EmbeddedServer, literal: str, place: str
) -> None:
    sid, content = body_with(literal, place)
    r = post_raw(server.base, content)
    assert r.status_code == 422, r.text
    payload = r.json()
    assert payload["detail"] == NON_FINITE_DETAIL
    assert "NaN" in payload["detail"] and "Infinity" in payload["detail"]
    assert [e["type"] for e in payload["errors"]] == ["non_finite_number"], payload
    assert payload["errors"][0]["loc"] == LOCS[place], payload
    # Nothing was stored: the sheet is unknown, not waiting to be judged.
    status = httpx.get(f"{server.base}/v1/campaigns/{CAMPAIGN}/submissions/{sid}", timeout=10)
    assert status.status_code == 404, status.text


@pytest.mark.parametrize("literal", ["1.5e308", "-1.7976931348623157e308", "1e-400", "0.0"])
def test_large_but_finite_numbers_are_taken(server: EmbeddedServer, literal: str) -> None:
    sid, content = body_with(literal, "extra_field")
    r = post_raw(server.base, content)
    assert r.status_code == 202, r.text
    assert verdict(server.base, sid)["status"] == "accepted"


def test_number_like_strings_are_only_text(server: EmbeddedServer) -> None:
    body = sheet(CAMPAIGN, opinion="NaN Infinity 1e400", answers={
        "q1": 4, "q2": "b", "q4": "Infinity"})
    r = post_raw(server.base, json.dumps(body).encode())
    assert r.status_code == 202, r.text
    assert verdict(server.base, body["submission_id"])["status"] == "accepted"


# -- personal numbers ------------------------------------------------------------------------------


def files_containing(root: Path, needle: bytes) -> list[str]:
    return [str(p.relative_to(root)) for p in sorted(root.rglob("*"))
            if p.is_file() and needle in p.read_bytes()]


def test_personal_numbers_are_masked_before_anything_is_stored(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    data = tmp_path_factory.mktemp("rel-privacy") / "data"
    srv = EmbeddedServer(data).start()
    try:
        assert srv.define(campaign_definition(CAMPAIGN)).status_code == 200
        body = sheet(
            CAMPAIGN,
            answers={"q1": 4, "q2": "b", "q4": f"我的身份证 {ID_CARD} 被人冒用"},
            opinion=f"{MARKER} 请回电 {PHONE} 或 {PHONE_SPACED}",
            respondent={"province": "44", "city": "4401", "contact": f"tel:{PHONE}"},
        )
        plain = sheet(CAMPAIGN, opinion="没有号码的意见")
        # Escaped in the JSON text (\\uXXXX), the numbers are no less personal.
        escaped = json.dumps(body, ensure_ascii=True).encode()
        assert post_raw(srv.base, escaped).status_code == 202
        assert post_raw(srv.base, json.dumps(plain).encode()).status_code == 202
        # The answering page resends the same sheet (its 202 was lost): absorbed, counted once.
        assert post_raw(srv.base, json.dumps(body, ensure_ascii=False).encode()).status_code == 202
        first = verdict(srv.base, body["submission_id"])
        assert first["status"] == "accepted" and first["reasons"] == [], first
        assert verdict(srv.base, plain["submission_id"])["status"] == "accepted"
        board = httpx.get(f"{srv.base}/v1/campaigns/{CAMPAIGN}/leaderboard",
                          params={"level": "unit"}, timeout=10).json()
        assert {r["id"]: r["valid"] for r in board["rows"]}["gd-cyber"] == 2
    finally:
        srv.stop()  # SIGTERM: the log, offsets and chDB files are all on disk afterwards

    # The search works: the sheet's own text and id are in the raw log, the masks beside them.
    assert files_containing(data, MARKER.encode())
    assert files_containing(data, body["submission_id"].encode())
    assert files_containing(data, b"*" * len(ID_CARD))
    for secret in (PHONE, PHONE_SPACED, ID_CARD, ID_CARD.lower(), PHONE_SPACED.replace("-", "")):
        assert files_containing(data, secret.encode()) == [], secret
