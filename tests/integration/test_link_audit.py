"""A unit's links issued and revoked are admin writes like any other: on the audit trail
(`GET /v1/admin/audit`, the registry's `audit`) with who asked and when, and each `link.issued`
event names its caller. Over HTTP with a unit's token on a real `survey-ingest serve`, then from
the CLI in process over the same (stopped) data dir, which names the local operator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventlog.file_log import FileLog
from runtime.registry import from_data_dir
from schemas.events import LinkIssued, decode_event
from tests.helpers import campaign_definition
from tests.integration.embedded_server import ADMIN, ADMIN_TOKEN, EmbeddedServer

pytestmark = pytest.mark.integration

CAMPAIGN = "c-link-audit"
OPERATOR = "ops-alice"  # the login the CLI runs as (getpass reads LOGNAME first)


def cli(data_dir: Path, *args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "commands.cli", *args, "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=180, check=False,
        env={"SURVEY_ADMIN_TOKEN": ADMIN_TOKEN, "PATH": "/usr/bin:/bin", "LOGNAME": OPERATOR},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def issued_events(data_dir: Path) -> dict[str, LinkIssued]:
    """Every link.issued event on the embedded registry log, by code."""
    log = FileLog(data_dir / "registry", fsync=False)
    found: dict[str, LinkIssued] = {}
    try:
        position = 0
        while records := log.read(position, 1000):
            for record in records:
                event = decode_event(record.value)
                if isinstance(event, LinkIssued):
                    found[event.link_code] = event
            position = records[-1].offset + 1
    finally:
        log.close()
    return found


def test_links_issued_and_revoked_are_audited_with_who_asked(tmp_path: Path) -> None:
    """Catches link writes left off the audit trail and a `link.issued` that does not say who
    asked (before the fix: no audit entry at all, and `issued_by` empty)."""
    data_dir = tmp_path / "data"
    srv = EmbeddedServer(data_dir).start()
    try:
        assert srv.define(campaign_definition(CAMPAIGN)).status_code == 200
        r = httpx.post(f"{srv.base}/v1/admin/tokens", headers=ADMIN, timeout=30, json={
            "role": "unit", "campaign": CAMPAIGN, "unit": "gd-cyber", "label": "gd desk"})
        assert r.status_code == 201, r.text
        unit_id, unit = r.json()["token_id"], {"authorization": f"Bearer {r.json()['token']}"}
        r = httpx.post(f"{srv.base}/v1/campaigns/{CAMPAIGN}/units/gd-cyber/links",
                       json={"count": 2, "channel": "wechat"}, headers=unit, timeout=30)
        assert r.status_code == 201, r.text
        codes = [lk["code"] for lk in r.json()["links"]]
        for _ in range(2):  # revoking again changes nothing, and is not audited again
            r = httpx.delete(f"{srv.base}/v1/campaigns/{CAMPAIGN}/links/{codes[0]}",
                             headers=unit, timeout=30)
            assert r.status_code == 200, r.text
        audit = httpx.get(f"{srv.base}/v1/admin/audit", params={"campaign": CAMPAIGN},
                          headers=ADMIN, timeout=30).json()["audit"]
    finally:
        srv.stop()
    links = [e for e in audit if e["action"].startswith("link.")]
    assert [e["action"] for e in links] == ["link.revoked", "link.issued"]  # newest first
    revoked, issued = links
    for entry in links:
        assert entry["by"] == {"token_id": unit_id, "label": "gd desk"}
        assert entry["at"] and entry["campaign"] == CAMPAIGN
    assert issued["detail"] == {"unit": "gd-cyber", "channel": "wechat", "count": "2",
                                "codes": ",".join(codes)}
    assert revoked["detail"]["code"] == codes[0] and revoked["detail"]["unit"] == "gd-cyber"

    # The CLI in process over the stopped instance's data dir: the local operator.
    made = cli(data_dir, "links", "issue", CAMPAIGN, "gd-cyber", "--count", "1",
               "--channel", "poster")
    (by_cli,) = [lk["code"] for lk in made["links"]]
    cli(data_dir, "links", "revoke", CAMPAIGN, by_cli)
    operator = f"{OPERATOR} (command line)"
    trail = [e for e in from_data_dir(data_dir).audit if e.action.startswith("link.")]
    assert [(e.action, e.by.label) for e in trail] == [
        ("link.issued", "gd desk"), ("link.revoked", "gd desk"),
        ("link.issued", operator), ("link.revoked", operator)]
    assert trail[2].detail["codes"] == by_cli and trail[3].detail["code"] == by_cli

    events = issued_events(data_dir)
    assert {c: events[c].issued_by for c in [*codes, by_cli]} == {
        codes[0]: f"gd desk [{unit_id}]", codes[1]: f"gd desk [{unit_id}]",
        by_cli: f"{operator} [env-admin]"}
