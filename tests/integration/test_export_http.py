"""Issue #17 through a real `survey-ingest serve`: the export route (streamed attachment, counts
equal to the leaderboard, filters, refusals, the audit line), `survey-ingest export` against the
running instance and against its stopped data dir, and `campaign freeze --export-dir`."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyarrow.parquet as pq
import pyreadstat
import pytest

from tests.helpers import campaign_definition, sheet, status_of
from tests.integration.embedded_server import ADMIN_TOKEN, EmbeddedServer

pytestmark = pytest.mark.integration

CAMPAIGN = "c-export"
AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}
EXPORT = f"/v1/campaigns/{CAMPAIGN}/export"


def cli(*args: str, ok: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "commands.cli", *args], capture_output=True, text=True,
        timeout=300, check=False,
        env={"SURVEY_ADMIN_TOKEN": ADMIN_TOKEN, "PATH": "/usr/bin:/bin", **env},
    )
    if ok:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("export")
    srv = EmbeddedServer(root / "data").start()
    try:
        defn = campaign_definition(CAMPAIGN)
        defn["questionnaire"]["questions"][2]["label"] = "遇到过哪些问题"
        assert srv.define(defn).status_code == 200
        sheets = [sheet(CAMPAIGN) for _ in range(4)]
        sheets += [sheet(CAMPAIGN, "Gx1aB2cD") for _ in range(3)]
        sheets += [sheet(CAMPAIGN, "Sh9zY8xW") for _ in range(2)]
        sheets.append(sheet(CAMPAIGN, started_at=sheets[0]["submitted_at"]))  # too fast
        for body in sheets:
            r = httpx.post(f"{srv.base}/v1/submissions", json=body, timeout=10)
            assert r.status_code == 202, r.text
        for body in sheets:
            status_of(srv, CAMPAIGN, body["submission_id"])
        yield {"server": srv, "base": srv.base, "sheets": sheets, "root": root}
    finally:
        srv.stop()


def valid_by_unit(base: str) -> dict[str, int]:
    r = httpx.get(f"{base}/v1/campaigns/{CAMPAIGN}/leaderboard", timeout=10)
    return {row["id"]: row["valid"] for row in r.json()["rows"] if row["valid"]}


def test_a_csv_export_is_a_streamed_attachment_matching_the_leaderboard(
    served: dict[str, Any],
) -> None:
    r = httpx.get(served["base"] + EXPORT, params={"format": "csv"}, headers=AUTH, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"].startswith('attachment; filename="c-export-accepted')
    assert r.content[:3] == b"\xef\xbb\xbf"
    frame = pd.read_csv(io.BytesIO(r.content), encoding="utf-8-sig", dtype=str,
                        keep_default_na=False)
    assert len(frame) == int(r.headers["x-export-rows"]) == 9
    assert frame["unit"].value_counts().to_dict() == valid_by_unit(served["base"])
    assert list(frame.columns)[:3] == ["submission_id", "received_at", "status"]
    assert list(frame.columns)[-1] == "opinion"
    assert "device_hash" not in frame.columns and "client" not in frame.columns
    # The opinion as stored: masked when judged, Chinese unchanged.
    assert set(frame["opinion"]) == {"希望加强个人信息保护，联系我 ***********"}
    assert set(frame["q3_a"]) == {"1"} and set(frame["q3_b"]) == {"0"}
    log = served["server"].log_tail()
    assert '"action": "export"' in log and '"via": "http"' in log  # audited


def test_parquet_with_a_region_filter_holds_only_that_region(served: dict[str, Any]) -> None:
    r = httpx.get(served["base"] + EXPORT, headers=AUTH, timeout=60,
                  params={"format": "parquet", "work_region": "east", "status": "all"})
    assert r.status_code == 200, r.text
    table = pq.read_table(io.BytesIO(r.content))
    assert table.num_rows == 2 and set(table.column("work_region").to_pylist()) == {"east"}


def test_bad_export_requests_are_clear_4xx_errors(served: dict[str, Any]) -> None:
    base = served["base"] + EXPORT
    cases = [
        ({"format": "json"}, AUTH, 422, "unknown format 'json'"),
        ({"format": "csv", "colour": "red"}, AUTH, 422, "unknown filter 'colour'"),
        ({"format": "csv", "status": "valid"}, AUTH, 422, "unknown status"),
        ({"format": "csv"}, {}, 401, "token"),
    ]
    for params, headers, code, detail in cases:
        r = httpx.get(base, params=params, headers=headers, timeout=30)
        assert r.status_code == code, (params, r.text)
        assert detail in r.json()["detail"]
    r = httpx.get(served["base"] + "/v1/campaigns/nope/export", headers=AUTH, timeout=30)
    assert r.status_code == 404 and "unknown campaign" in r.json()["detail"]


def test_the_cli_exports_from_a_running_instance_with_its_codebook(
    served: dict[str, Any], tmp_path: Path
) -> None:
    out, book = tmp_path / "x.sav", tmp_path / "codebook.json"
    done = cli("export", "--campaign", CAMPAIGN, "--format", "sav", "--out", str(out),
               "--codebook", str(book), "--url", served["base"], "--token", ADMIN_TOKEN)
    summary = json.loads(done.stdout)
    frame, meta = pyreadstat.read_sav(str(out))
    assert len(frame) == summary["rows"] == 9
    assert meta.column_names_to_labels["q3_a"] == "遇到过哪些问题: a"
    codebook = json.loads(book.read_text(encoding="utf-8"))
    assert codebook["as_of"] == summary["as_of"] and codebook["rows"] == 9
    assert {u: s["accepted"] for u, s in codebook["rows_by_unit"].items()} == valid_by_unit(
        served["base"])
    names = [v["name"] for v in codebook["variables"]]
    assert names[:2] == ["submission_id", "received_at"] and "q3_d" in names


def test_the_cli_refuses_a_bad_request_in_one_line(
    served: dict[str, Any], tmp_path: Path
) -> None:
    done = cli("export", "--campaign", CAMPAIGN, "--format", "json", "--out",
               str(tmp_path / "x"), "--url", served["base"], ok=False)
    assert done.returncode == 2 and "invalid choice: 'json'" in done.stderr
    assert "Traceback" not in done.stderr
    done = cli("export", "--campaign", CAMPAIGN, "--format", "csv", "--out",
               str(tmp_path / "x"), "--url", served["base"], "--token", "wrong", ok=False)
    assert done.returncode == 2 and "401" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.part").exists()


def test_z_freeze_writes_the_final_export_beside_the_ranking(
    served: dict[str, Any], tmp_path: Path
) -> None:
    """Last in the module: stops the server to read its data dir."""
    served["server"].stop()
    data = str(served["root"] / "data")
    out = tmp_path / "local.xlsx"
    done = cli("export", "--campaign", CAMPAIGN, "--format", "xlsx", "--out", str(out),
               "--status", "all", "--data-dir", data)
    assert json.loads(done.stdout)["rows"] == 10
    assert "rows/s" not in done.stderr  # piped: no progress display unless asked
    done = cli("export", "--campaign", CAMPAIGN, "--format", "csv", "--out",
               str(tmp_path / "local.csv"), "--data-dir", data, SURVEY_PROGRESS="always")
    assert json.loads(done.stdout)["rows"] == 9
    assert "10/10" not in done.stderr and "9/9" in done.stderr and "rows/s" in done.stderr
    frozen = tmp_path / "frozen"
    done = cli("campaign", "freeze", CAMPAIGN, "--export-dir", str(frozen), "--data-dir", data)
    manifest = json.loads((frozen / "manifest.json").read_text(encoding="utf-8"))
    assert manifest == json.loads(done.stdout)
    assert [f["name"] for f in manifest["files"]] == [
        "ranking.json", "export.csv", "export.parquet", "codebook.json"]
    for f in manifest["files"]:
        assert hashlib.sha256((frozen / f["name"]).read_bytes()).hexdigest() == f["sha256"]
    ranking = json.loads((frozen / "ranking.json").read_text(encoding="utf-8"))
    assert ranking["sha256"] == manifest["ranking_sha256"]
    assert pq.read_table(frozen / "export.parquet").num_rows == manifest["rows"] == 10
