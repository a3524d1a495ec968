"""Links that units issue themselves, through a real `survey-ingest serve` (CONTRACT §8):
issue within planned_links (409 past it), opens counted per link, QR codes that decode to the
link's URL, a PDF sheet, revocation (later sheets rejected revoked_link), and a restart that
folds the registry log again into the same links."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import PIL.Image
import pytest
import zxingcpp

from tests.helpers import campaign_definition, sheet, status_of
from tests.integration.embedded_server import ADMIN_TOKEN, EmbeddedServer

pytestmark = pytest.mark.integration
CAMPAIGN = "c-links"
AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}


def definition() -> dict[str, Any]:
    d = campaign_definition(CAMPAIGN)
    # gd-cyber holds two links from the file: two more fit its plan of four.
    d["units"][0]["planned_links"] = 4
    return d


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    srv = EmbeddedServer(tmp_path_factory.mktemp("links") / "data").start()
    try:
        assert srv.define(definition()).status_code == 200
        yield srv
    finally:
        srv.stop()


def links_of(server: EmbeddedServer, unit: str = "gd-cyber") -> dict[str, Any]:
    r = httpx.get(f"{server.base}/v1/campaigns/{CAMPAIGN}/units/{unit}/links", headers=AUTH)
    assert r.status_code == 200, r.text
    return dict(r.json())


def issue(server: EmbeddedServer, count: int, channel: str = "wechat") -> httpx.Response:
    return httpx.post(
        f"{server.base}/v1/campaigns/{CAMPAIGN}/units/gd-cyber/links",
        json={"count": count, "channel": channel}, headers=AUTH, timeout=30)


def test_links_need_a_token(server: EmbeddedServer) -> None:
    r = httpx.get(f"{server.base}/v1/campaigns/{CAMPAIGN}/units/gd-cyber/links")
    assert r.status_code == 401 and r.json()["detail"]
    r = httpx.post(f"{server.base}/v1/campaigns/{CAMPAIGN}/units/gd-cyber/links",
                   json={"count": 1})
    assert r.status_code == 401


def test_issue_within_plan_then_409_saying_how_many_are_left(server: EmbeddedServer) -> None:
    too_many = issue(server, 3)
    assert too_many.status_code == 409
    assert "2 more can be issued" in too_many.json()["detail"]
    r = issue(server, 2)
    assert r.status_code == 201, r.text
    made = r.json()["links"]
    assert len(made) == 2 and all(len(lk["code"]) == 12 for lk in made)
    assert made[0]["code"] != made[1]["code"]
    assert all(lk["url"].endswith(f"/s/{lk['code']}") and lk["channel"] == "wechat"
               for lk in made)
    full = issue(server, 1)
    assert full.status_code == 409 and "0 more can be issued" in full.json()["detail"]
    listed = links_of(server)
    assert listed["planned_links"] == 4 and listed["left"] == 0
    codes = {lk["code"] for lk in listed["links"]}
    assert {"Gd7kQ2xP", "Gd7kQ2xQ"} | {lk["code"] for lk in made} == codes
    for lk in listed["links"]:
        assert {"code", "channel", "url", "revoked", "opens", "valid", "rejected"} <= set(lk)


def _issued(server: EmbeddedServer) -> list[dict[str, Any]]:
    return [lk for lk in links_of(server)["links"] if lk["code"] not in ("Gd7kQ2xP", "Gd7kQ2xQ")]


def test_opens_counted_per_link(server: EmbeddedServer) -> None:
    link = _issued(server)[0]
    for _ in range(3):  # a load, and its script's report of it (what a browser does)
        assert httpx.get(f"{server.base}/s/{link['code']}").status_code == 200
        assert httpx.post(f"{server.base}/s/{link['code']}/open").status_code == 204
    mine = next(lk for lk in links_of(server)["links"] if lk["code"] == link["code"])
    assert mine["opens"] == 3
    r = httpx.get(f"{server.base}/v1/campaigns/{CAMPAIGN}/counts",
                  params={"by": "link", "unit": "gd-cyber"}, headers=AUTH)
    row = next(r_ for r_ in r.json()["rows"] if r_["link"] == link["code"])
    assert row["opens"] == 3
    r = httpx.get(f"{server.base}/v1/campaigns/{CAMPAIGN}/counts",
                  params={"by": "unit", "work_region": "south"}, headers=AUTH)
    assert next(r_ for r_ in r.json()["rows"] if r_["unit"] == "gd-cyber")["opens"] >= 3


def test_qr_png_and_svg_decode_to_the_link(server: EmbeddedServer) -> None:
    for link in _issued(server):
        base = f"{server.base}/v1/campaigns/{CAMPAIGN}/units/gd-cyber/links/{link['code']}"
        png = httpx.get(f"{base}/qr.png", headers=AUTH)
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        found = zxingcpp.read_barcodes(PIL.Image.open(io.BytesIO(png.content)))
        assert [b.text for b in found] == [link["url"]]
        svg = httpx.get(f"{base}/qr.svg", headers=AUTH)
        assert svg.status_code == 200 and b"<svg" in svg.content
    other = httpx.get(
        f"{server.base}/v1/campaigns/{CAMPAIGN}/units/gx-net/links/Gd7kQ2xP/qr.png", headers=AUTH)
    assert other.status_code == 404


def test_sheet_pdf(server: EmbeddedServer, tmp_path: Path) -> None:
    r = httpx.get(f"{server.base}/v1/campaigns/{CAMPAIGN}/units/gd-cyber/sheet.pdf",
                  headers=AUTH, timeout=60)
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert r.headers["content-type"] == "application/pdf"


def test_revoked_link_rejects_later_sheets_and_closes_its_page(server: EmbeddedServer) -> None:
    link = _issued(server)[1]
    before = sheet(CAMPAIGN, link["code"])
    assert httpx.post(f"{server.base}/v1/submissions", json=before).status_code == 202
    assert status_of(server, CAMPAIGN, before["submission_id"])["status"] == "accepted"
    r = httpx.delete(f"{server.base}/v1/campaigns/{CAMPAIGN}/links/{link['code']}", headers=AUTH)
    assert r.status_code == 200 and r.json()["revoked"] is True
    after = sheet(CAMPAIGN, link["code"])
    assert httpx.post(f"{server.base}/v1/submissions", json=after).status_code == 202
    judged = status_of(server, CAMPAIGN, after["submission_id"])
    assert judged["status"] == "rejected" and "revoked_link" in judged["reasons"]
    assert httpx.get(f"{server.base}/s/{link['code']}").status_code == 410
    assert httpx.post(f"{server.base}/s/{link['code']}/open").status_code == 204
    listed = next(lk for lk in links_of(server)["links"] if lk["code"] == link["code"])
    assert listed["revoked"] is True and listed["valid"] == 1 and listed["rejected"] == 1
    assert listed["opens"] == 0  # a closed page is not an open
    # Revoking freed room in the plan.
    assert links_of(server)["left"] == 1


def test_concurrent_issues_never_pass_the_plan(server: EmbeddedServer) -> None:
    """Catches an API that trusts its own check alone: twelve requests at once for sh-uni (plan
    10, one live link from the file) all pass the check before any is folded; the fold keeps
    nine, the other three are told 409."""
    import asyncio

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as client:
            return await asyncio.gather(*(client.post(
                f"{server.base}/v1/campaigns/{CAMPAIGN}/units/sh-uni/links",
                json={"count": 1, "channel": "web"}, headers=AUTH) for _ in range(12)))

    answers = asyncio.run(burst())
    assert sorted(r.status_code for r in answers) == [201] * 9 + [409] * 3
    listed = links_of(server, "sh-uni")
    assert listed["live_links"] == 10 and listed["left"] == 0


def test_links_qr_from_a_running_instance_has_issued_links(
    server: EmbeddedServer, tmp_path: Path
) -> None:
    import subprocess
    import sys

    out = tmp_path / "qr"
    done = subprocess.run(
        [sys.executable, "-m", "commands.cli", "links", "qr", "--campaign", CAMPAIGN, "--unit",
         "gd-cyber", "--url", server.base, "--token", ADMIN_TOKEN, "--out", str(out),
         "--base-url", server.base], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    live = [lk["code"] for lk in links_of(server)["links"] if not lk["revoked"]]
    written = sorted(p.stem for p in (out / "gd-cyber").glob("*.png"))
    assert written == sorted(live) and len(live) == 3  # two from the file, one issued
    assert (out / "gd-cyber" / "sheet.pdf").read_bytes().startswith(b"%PDF")


def test_restart_folds_the_same_links_and_keeps_opens(server: EmbeddedServer) -> None:
    before = links_of(server)
    server.stop()
    server.start()
    after = links_of(server)
    for old, new in zip(before["links"], after["links"], strict=True):
        assert old == new, ({k: (v, new[k]) for k, v in old.items() if new[k] != v})
    assert {k: v for k, v in after.items() if k != "links"} == {
        k: v for k, v in before.items() if k != "links"}
    assert sum(lk["opens"] for lk in after["links"]) == 3
