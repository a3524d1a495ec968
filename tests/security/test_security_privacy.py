"""Privacy end to end: no raw IP or device id anywhere on disk, personal numbers masked before
storage, and `survey-ingest erase` removing verdicts by submission, device and date."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.privacy import keyed_hash
from tests.helpers import campaign_definition, sheet
from tests.integration.embedded_server import EmbeddedServer
from tests.security.support import HASH_KEY, status_of

# Real servers on loopback: sockets allowed (tests/conftest.py).
pytestmark = pytest.mark.integration

CAMPAIGN = "privacy"
RAW_DEVICE = "raw-device-7f3a9c-PRIVACY"
OTHER_DEVICE = "raw-device-0b1d2e-OTHER"
RAW_IP = "203.0.113.77"
PHONE = "13812345678"
ID_CARD = "11010519900101123X"
ENV = {"SURVEY_TRUSTED_PROXIES": json.dumps(["127.0.0.1"]), "SURVEY_HASH_KEY": HASH_KEY}


@pytest.fixture(scope="module")
def posted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("privacy") / "data"
    srv = EmbeddedServer(data, env=ENV).start()
    try:
        assert srv.define(campaign_definition(CAMPAIGN)).status_code == 200
        answers = {"q1": 4, "q2": "b", "q4": f"电话 {PHONE}，身份证 {ID_CARD}"}
        a = sheet(CAMPAIGN, device_id=RAW_DEVICE, answers=answers,
                  opinion=f"请联系 {PHONE} 或 +86 139-1234-5678，证件 {ID_CARD}")
        b = sheet(CAMPAIGN, device_id=OTHER_DEVICE)
        c = sheet(CAMPAIGN, device_id=None)
        for body in (a, b, c):
            r = httpx.post(f"{srv.base}/v1/submissions", json=body,
                           headers={"x-forwarded-for": RAW_IP}, timeout=10)
            assert r.status_code == 202, r.text
        # An identical resend (same id, same content) must still be absorbed as a resend.
        r = httpx.post(f"{srv.base}/v1/submissions", json=a, timeout=10)
        assert r.status_code == 202
        verdicts = {k: status_of(srv, body["submission_id"], CAMPAIGN)
                    for k, body in {"a": a, "b": b, "c": c}.items()}
        yield {"server": srv, "data": data, "a": a, "b": b, "c": c, "verdicts": verdicts}
    finally:
        srv.kill()


def files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_identical_resend_with_hashed_device_is_not_a_conflict(posted: dict[str, Any]) -> None:
    assert posted["verdicts"]["a"]["status"] == "accepted", posted["verdicts"]
    assert "duplicate_submission" not in posted["verdicts"]["a"]["reasons"]


def test_no_raw_ip_or_device_id_anywhere_in_the_data_dir(posted: dict[str, Any]) -> None:
    data: Path = posted["data"]
    # The grep works: the raw log holds the sheets (their ids) and the device id's keyed hash.
    assert files_containing(data, posted["a"]["submission_id"].encode())
    assert files_containing(data, ("h:" + keyed_hash(HASH_KEY, RAW_DEVICE)).encode())
    for secret in (RAW_DEVICE, OTHER_DEVICE, RAW_IP):
        assert files_containing(data, secret.encode()) == [], secret


def _query(data: Path, query: str) -> list[list[Any]]:
    """Runs one query on the stopped instance's chDB store in a child process (chDB allows one
    data directory per process, and this test process may have opened another)."""
    script = (
        "import json, sys\n"
        "from storage import open_store\n"
        "s = open_store(sys.argv[1])\n"
        "print(json.dumps([list(r) for r in s._execute(sys.argv[2])], default=str))\n"
        "s.close()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, f"chdb://{data / 'chdb'}", query],
        capture_output=True, text=True, timeout=120, check=True,
    )
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def _erase(data: Path, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "commands.cli", "erase", "--campaign", CAMPAIGN,
         "--data-dir", str(data), *args],
        capture_output=True, text=True, timeout=120, env={**ENV, **_os_env()},
    )
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _os_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("SURVEY_")}


def test_masked_free_text_and_erase_by_device_submission_and_date(
    posted: dict[str, Any],
) -> None:
    srv: EmbeddedServer = posted["server"]
    data: Path = posted["data"]
    srv.stop()
    sid_a = posted["a"]["submission_id"]
    (opinion, answers, device), = _query(
        data, f"SELECT opinion, answers_json, device_hash FROM submissions "
        f"WHERE submission_id = '{sid_a}'",
    )
    for text in (opinion, answers):
        assert PHONE not in text and ID_CARD not in text and "139-1234-5678" not in text, text
        assert "*" * len(PHONE) in text
    assert device == keyed_hash(HASH_KEY, RAW_DEVICE)  # the same hash the raw device id gets

    # The clean stop checkpointed the anomaly detectors, whose state names sheets (a text
    # cluster's samples): a dry run leaves it, an erase removes it so the next start rebuilds
    # them from the erased store.
    checkpoint = data / "detectors.ckpt"
    assert checkpoint.exists()
    assert _erase(data, "--device-id", RAW_DEVICE, "--dry-run")["matched"] == 1
    assert checkpoint.exists()
    assert _erase(data, "--device-id", RAW_DEVICE) == {**_erase_result(1)}
    assert not checkpoint.exists()
    assert _erase(data, "--submission-id", posted["b"]["submission_id"])["deleted"] == 1
    assert _erase(data, "--submission-id", "no-such-sheet")["deleted"] == 0
    tomorrow = dt.date.today() + dt.timedelta(days=2)
    assert _erase(data, "--before", tomorrow.isoformat())["deleted"] == 1  # sheet c
    assert _query(data, f"SELECT count() FROM submissions WHERE campaign = '{CAMPAIGN}'") == [[0]]

    # The instance starts again on the erased store, and the erased sheets are gone.
    srv.start()
    for key in ("a", "b", "c"):
        sid = posted[key]["submission_id"]
        r = httpx.get(f"{srv.base}/v1/campaigns/{CAMPAIGN}/submissions/{sid}", timeout=10)
        assert r.status_code == 404, r.text


def _erase_result(n: int) -> dict[str, Any]:
    return {
        "campaign": CAMPAIGN, "matched": n, "deleted": n, "store": "embedded",
        "note": "the raw log is erased by its retention; counts rebuilt without the erased sheets",
    }


def test_erase_refuses_a_missing_store(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "commands.cli", "erase", "--campaign", CAMPAIGN,
         "--data-dir", str(tmp_path / "nothing"), "--before", "2026-01-01"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 2 and "no embedded store" in out.stderr


def test_device_id_hashing_is_deterministic_and_not_hashed_twice() -> None:
    from core.judge import DEVICE_HASH_PREFIX, device_hash
    from ingest.collector import Collector

    class NoLog:
        def healthy(self) -> bool:
            return True

    collector = Collector(NoLog(), dict, hash_key=HASH_KEY)  # type: ignore[arg-type]
    body = json.dumps(sheet(CAMPAIGN, device_id=RAW_DEVICE, opinion="意见")).encode()
    once, again = collector._hash_device_id(body, RAW_DEVICE), collector._hash_device_id(
        body, RAW_DEVICE
    )
    assert once == again and RAW_DEVICE.encode() not in once
    assert "意见".encode() in once  # free text stays readable UTF-8, not \\u escapes
    logged = json.loads(once)["device_id"]
    assert logged.startswith(DEVICE_HASH_PREFIX)
    assert device_hash(HASH_KEY, logged) == device_hash(HASH_KEY, RAW_DEVICE)
    assert device_hash(HASH_KEY, None) == ""
