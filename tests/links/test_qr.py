"""`survey-ingest links qr`: every PNG decodes back to its link's URL; sheets are printable and
escaped; revoked links get no code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image

from commands.cli import main
from eventlog.file_log import FileLog
from tests.helpers import campaign_definition

ROOT = Path(__file__).resolve().parents[2]
BASE = "https://survey.example.cn"
ACTIVE = {"gd-cyber": ["Gd7kQ2xP", "Gd7kQ2xQ"], "gx-net": ["Gx1aB2cD"], "sh-uni": ["Sh9zY8xW"]}


def decode(png: Path) -> list[str]:
    with Image.open(png) as image:
        return [r.text for r in zxingcpp.read_barcodes(image)]


def write_campaign(path: Path, **changes: Any) -> Path:
    d = campaign_definition("2023")
    d.update(changes)
    path.write_text(json.dumps(d, ensure_ascii=False), encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any] | str]:
    code = main(["links", "qr", *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else err)


def test_every_png_decodes_to_its_link_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    campaign = write_campaign(tmp_path / "campaign.json")
    out = tmp_path / "qr"
    code, summary = run(capsys, "--campaign", "2023", "--file", str(campaign), "--out", str(out),
                        "--base-url", BASE + "/")
    assert code == 0 and isinstance(summary, dict)
    assert summary["links"] == 4 and summary["revoked_skipped"] == 1
    assert sorted(summary["units"]) == sorted(ACTIVE)
    for unit, codes in ACTIVE.items():
        assert sorted(p.name for p in (out / unit).iterdir()) == sorted(
            [f"{c}.png" for c in codes] + [f"{c}.svg" for c in codes] + ["sheet.html", "sheet.pdf"])
        sheet = (out / unit / "sheet.html").read_text(encoding="utf-8")
        for c in codes:
            assert decode(out / unit / f"{c}.png") == [f"{BASE}/s/{c}"]
            svg = (out / unit / f"{c}.svg").read_text(encoding="utf-8")
            assert "<svg" in svg and f"{BASE}/s/{c}" in svg
            assert f"{BASE}/s/{c}" in sheet
        assert sheet.count("<svg") == len(codes) and "@media print" in sheet
    assert "Sh9zY8xR" not in (out / "sh-uni" / "sheet.html").read_text(encoding="utf-8")


def test_one_unit_and_a_link_revoked_since_the_last_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = campaign_definition("2023")
    for link in d["links"]:
        link["revoked"] = False
    campaign = write_campaign(tmp_path / "campaign.json", links=d["links"])
    out = tmp_path / "qr"
    args = ["--campaign", "2023", "--file", str(campaign), "--out", str(out), "--base-url", BASE,
            "--unit", "sh-uni"]
    assert run(capsys, *args)[0] == 0
    assert [p.name for p in out.iterdir()] == ["sh-uni"]
    assert (out / "sh-uni" / "Sh9zY8xR.png").exists()

    d["links"][-1]["revoked"] = True  # the poster link is withdrawn
    write_campaign(campaign, links=d["links"])
    code, summary = run(capsys, *args)
    assert code == 0 and isinstance(summary, dict) and summary["revoked_skipped"] == 1
    assert not (out / "sh-uni" / "Sh9zY8xR.png").exists()
    assert not (out / "sh-uni" / "Sh9zY8xR.svg").exists()
    assert decode(out / "sh-uni" / "Sh9zY8xW.png") == [f"{BASE}/s/Sh9zY8xW"]


def test_sheet_shows_hostile_names_as_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = campaign_definition("2023")
    d["units"][0]["name"] = "<script>alert(1)</script>协会"
    d["links"][0]["channel"] = '"><img src=x>'
    campaign = write_campaign(tmp_path / "campaign.json", units=d["units"], links=d["links"])
    out = tmp_path / "qr"
    assert run(capsys, "--campaign", "2023", "--file", str(campaign), "--out", str(out),
               "--unit", "gd-cyber", "--base-url", BASE)[0] == 0
    sheet = (out / "gd-cyber" / "sheet.html").read_text(encoding="utf-8")
    assert "<script>" not in sheet and "&lt;script&gt;alert(1)&lt;/script&gt;协会" in sheet
    assert "<img" not in sheet and "&quot;&gt;&lt;img src=x&gt;" in sheet


def test_base_url_defaults_to_the_public_base_url_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SURVEY_PUBLIC_BASE_URL", "https://wj.example.org/")
    campaign = write_campaign(tmp_path / "campaign.json")
    out = tmp_path / "qr"
    assert run(capsys, "--campaign", "2023", "--file", str(campaign), "--out", str(out),
               "--unit", "gx-net")[0] == 0
    assert decode(out / "gx-net" / "Gx1aB2cD.png") == ["https://wj.example.org/s/Gx1aB2cD"]


def test_reads_the_registry_of_a_stopped_embedded_instance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    campaign = write_campaign(tmp_path / "campaign.json")
    data = tmp_path / "data"
    # A child process: `campaign load` runs its own event loop, and a browser test session in
    # this process may already have one.
    loaded = subprocess.run(
        [sys.executable, "-m", "commands.cli", "campaign", "load", str(campaign),
         "--data-dir", str(data)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert loaded.returncode == 0, loaded.stderr
    out = tmp_path / "qr"
    code, summary = run(capsys, "--campaign", "2023", "--data-dir", str(data), "--out", str(out),
                        "--base-url", BASE)
    assert code == 0 and isinstance(summary, dict)
    assert summary["links"] == 4 and summary["revoked_skipped"] == 1
    assert decode(out / "gd-cyber" / "Gd7kQ2xQ.png") == [f"{BASE}/s/Gd7kQ2xQ"]

    # While an instance holds the data dir, the command says to ask it over HTTP instead.
    with FileLog(data / "registry"):
        code, message = run(capsys, "--campaign", "2023", "--data-dir", str(data),
                            "--out", str(out))
    assert code == 2 and "--url" in str(message)


@pytest.mark.parametrize(("args", "says"), [
    (["--campaign", "other"], "defines campaign '2023', not 'other'"),
    (["--campaign", "2023", "--unit", "nope"], "no unit 'nope'"),
    (["--campaign", "2023", "--base-url", "survey.example.cn"], "must start with http"),
])
def test_bad_requests_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    campaign = write_campaign(tmp_path / "campaign.json")
    code, message = run(capsys, *args, "--file", str(campaign), "--out", str(tmp_path / "qr"))
    assert code == 2 and says in str(message) and "Traceback" not in str(message)


def test_a_missing_data_dir_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, message = run(capsys, "--campaign", "2023", "--data-dir", str(tmp_path / "none"),
                        "--out", str(tmp_path / "qr"))
    assert code == 2 and "no embedded registry" in str(message)
    assert not (tmp_path / "none").exists()
