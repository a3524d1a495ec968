"""Hostile input through a real serve process: schemathesis over the OpenAPI document, generated
bodies at the collector, and injection strings stored and read back literally."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.envelope import MAX_BODY_BYTES
from tests.helpers import campaign_definition, sheet
from tests.integration.embedded_server import ADMIN, ADMIN_TOKEN, EmbeddedServer
from tests.security.support import status_of

# Real servers on loopback: sockets allowed (tests/conftest.py).
pytestmark = pytest.mark.integration

CAMPAIGN = "fuzz"
ST_CONFIG = f"""
[[operations]]
include-path-regex = "^/v1/campaigns/\\\\{{campaign\\\\}}"
parameters = {{ campaign = "{CAMPAIGN}" }}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    srv = EmbeddedServer(tmp_path_factory.mktemp("fuzz") / "data").start()
    try:
        assert srv.define(campaign_definition(CAMPAIGN)).status_code == 200
        yield srv
    finally:
        srv.kill()


def post_raw(server: EmbeddedServer, content: bytes) -> httpx.Response:
    return httpx.post(
        f"{server.base}/v1/submissions", content=content,
        headers={"content-type": "application/json"}, timeout=30,
    )


def assert_client_outcome(r: httpx.Response) -> None:
    assert r.status_code == 202 or 400 <= r.status_code < 500, (r.status_code, r.text[:500])
    if r.status_code != 202:
        assert r.headers["content-type"].startswith("application/json"), r.headers
        assert r.json()["detail"], r.text


def assert_still_judging(server: EmbeddedServer) -> None:
    """Nothing accepted above poisoned the processor: a fresh sheet still gets its verdict."""
    canary = sheet(CAMPAIGN)
    assert post_raw(server, json.dumps(canary).encode()).status_code == 202
    assert status_of(server, canary["submission_id"], CAMPAIGN)["status"] == "accepted"
    assert httpx.get(f"{server.base}/readyz", timeout=10).status_code == 200


# -- schemathesis over the whole API ---------------------------------------------------------------


def test_schemathesis_finds_no_server_error(server: EmbeddedServer, tmp_path: Path) -> None:
    st_bin = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st_bin, "schemathesis is a dev dependency: pip install -e '.[dev]'"
    config = tmp_path / "schemathesis.toml"
    config.write_text(ST_CONFIG)
    out = subprocess.run(
        [
            st_bin, "--config-file", str(config), "run", f"{server.base}/openapi.json",
            "--checks", "not_a_server_error", "--max-examples", "30",
            "--include-method", "GET", "--include-method", "PUT", "--include-method", "POST",
            "--exclude-path-regex", "/live$",  # an endless event stream
            "--header", f"Authorization: Bearer {ADMIN_TOKEN}",
            "--workers", "1", "--generation-deterministic", "--request-timeout", "20",
            "--phases", "examples,coverage,fuzzing",
        ],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert_still_judging(server)


# -- generated bodies at the collector -------------------------------------------------------------

_scalars = (
    st.none() | st.booleans() | st.text(max_size=40)
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=30,
)
_FIELDS = [
    "submission_id", "campaign", "link_code", "questionnaire_version", "started_at",
    "submitted_at", "respondent", "device_id", "answers", "opinion",
]


@st.composite
def _wrong_typed_sheet(draw: st.DrawFn) -> bytes:
    body: dict[str, Any] = sheet(CAMPAIGN)
    for field in draw(st.lists(st.sampled_from(_FIELDS), min_size=1, max_size=3, unique=True)):
        body[field] = draw(_json)
    return json.dumps(body).encode()


@st.composite
def _answers_sheet(draw: st.DrawFn) -> bytes:
    body = sheet(CAMPAIGN)
    body["answers"] = draw(st.dictionaries(st.text(max_size=70), _json, max_size=8))
    body["respondent"] = draw(st.dictionaries(st.text(max_size=10), _json, max_size=4))
    return json.dumps(body).encode()


_NUMBERS = [
    b"1e400", b"-1e400", b"1e-400", b"NaN", b"Infinity", b"-Infinity", b"-0.0",
    b"1.00000000000000000000000000000001", b"9" * 400, b"-" + b"9" * 400, b"4.9e-324",
    b"18446744073709551616", b"-9223372036854775809",
]


@st.composite
def _number_sheet(draw: st.DrawFn) -> bytes:
    text = json.dumps(sheet(CAMPAIGN)).encode()
    number = draw(st.sampled_from(_NUMBERS))
    where = draw(st.sampled_from([b'"q1": 4', b'"s1": 3']))
    return text.replace(where, where.split(b":")[0] + b": " + number)


_bodies = (
    _json.map(lambda v: json.dumps(v).encode())
    | _wrong_typed_sheet()
    | _answers_sheet()
    | _number_sheet()
    | st.binary(max_size=200)
    | _wrong_typed_sheet().flatmap(
        lambda b: st.integers(0, len(b)).map(lambda i: b[:i] + b"\xff\xfe\x00" + b[i:])
    )
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=_bodies)
def test_generated_bodies_get_202_or_a_4xx_with_detail(server: EmbeddedServer, body: bytes) -> None:
    assert_client_outcome(post_raw(server, body))


def test_judging_survives_the_generated_bodies(server: EmbeddedServer) -> None:
    assert_still_judging(server)


@pytest.mark.parametrize(
    "content",
    [
        b"[" * 10_000 + b"]" * 10_000,
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        None,  # answers nested 10k deep inside a valid sheet
        b"\x00",
        b'{"submission_id": "abc\x00defgh"}',
        b'"\\ud800"',
        json.dumps(sheet(CAMPAIGN, opinion="\ud800 lone")).encode("utf-8", "surrogatepass"),
        b"\xef\xbb\xbf" + json.dumps(sheet(CAMPAIGN)).encode(),  # a BOM
        b"",
    ],
)
def test_pathological_bodies(server: EmbeddedServer, content: bytes | None) -> None:
    if content is None:
        body = json.dumps(sheet(CAMPAIGN, answers={"q1": 1})).encode()
        content = body.replace(b'{"q1": 1}', b'{"q1": ' + b"[" * 10_000 + b"]" * 10_000 + b"}")
    assert_client_outcome(post_raw(server, content))


@pytest.mark.parametrize("extra", [-1, 0, 1])
def test_bodies_at_the_64_kib_boundary(server: EmbeddedServer, extra: int) -> None:
    body = sheet(CAMPAIGN, opinion="")
    base = len(json.dumps(body, ensure_ascii=False).encode())
    # Pad with an extra field (the opinion is capped at 10,000 characters by the envelope).
    body["padding"] = ""
    pad = MAX_BODY_BYTES + extra - base - len(b', "padding": ""')
    body["padding"] = "x" * pad
    content = json.dumps(body, ensure_ascii=False).encode()
    assert len(content) == MAX_BODY_BYTES + extra
    r = post_raw(server, content)
    assert_client_outcome(r)
    assert r.status_code == (413 if extra > 0 else 202), r.text
    if r.status_code == 202:
        assert status_of(server, body["submission_id"], CAMPAIGN)["status"] in {
            "accepted", "rejected"}


# -- injection strings, stored and read back literally ---------------------------------------------

INJECTIONS = [
    "'; DROP TABLE submissions; --",
    "' OR '1'='1",
    "\\' OR 1=1 --",
    "x\\",
    "</script><svg onload=alert(1)>",  # respondent fields are capped at 32 characters
    "{{7*7}}",
    "${7*7}",
    "%s%s%n",
    "a\x00b",
    "Robert'); --",
    "\u202eevil",
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_strings_are_stored_and_read_back_literally(
    server: EmbeddedServer, text: str
) -> None:
    body = sheet(
        CAMPAIGN, link_code=text, device_id=text, opinion=text,
        respondent={"province": text, "city": text, "age_group": text},
        answers={"q1": 4, "q2": "b", "q4": text, text: text},
    )
    r = post_raw(server, json.dumps(body).encode())
    assert r.status_code == 202, r.text
    verdict = status_of(server, body["submission_id"], CAMPAIGN)
    assert verdict["status"] == "rejected"
    assert "unknown_link" in verdict["reasons"]
    rows = httpx.get(
        f"{server.base}/v1/campaigns/{CAMPAIGN}/counts",
        params={"by": "link,respondent_province,city", "respondent_province": text, "city": text},
        headers=ADMIN, timeout=10,
    )
    assert rows.status_code == 200, rows.text
    assert rows.json()["rows"] == [
        {"link": text, "respondent_province": text, "city": text,
         "valid": 0, "rejected": 1, "test": 0, "conflicts": 0}
    ], rows.text


def test_injection_strings_leave_the_store_intact(server: EmbeddedServer) -> None:
    assert_still_judging(server)
    r = httpx.get(f"{server.base}/v1/campaigns/{CAMPAIGN}/counts", headers=ADMIN, timeout=10)
    assert r.status_code == 200 and r.json()["rows"][0]["valid"] >= 1, r.text
