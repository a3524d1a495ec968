"""Issue #10 through a real `survey-ingest serve`: speed and attention rules, review decisions and
their audit trail over HTTP and the CLI, pacing, the provisional leaderboard, and a final ranking
that a replay of the embedded logs reproduces byte for byte."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import campaign_definition, sheet, status_of
from tests.integration.embedded_server import ADMIN_TOKEN, EmbeddedServer

# Real servers on loopback: sockets allowed (tests/conftest.py).
pytestmark = pytest.mark.integration

CAMPAIGN = "c-integrity"
AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def definition() -> dict[str, Any]:
    defn = campaign_definition(CAMPAIGN)
    q = defn["questionnaire"]
    q["min_seconds_per_item"] = 10
    q["questions"].append({
        "id": "ac", "type": "attention", "options": ["不满意", "比较满意", "非常满意"],
        "expected": "比较满意", "label": "本题请选择'比较满意'",
    })
    return defn


def answered(**answers: Any) -> dict[str, Any]:
    return {"q1": 4, "q2": "b", "q3": ["a", "c"], "q4": "free text", "s1": 3, "s2": 4,
            "ac": "比较满意", **answers}


def cli(*args: str, data_dir: Path | None = None) -> dict[str, Any]:
    argv = [sys.executable, "-m", "commands.cli", *args]
    if data_dir is not None:
        argv += ["--data-dir", str(data_dir)]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=180, check=False,
        env={"SURVEY_ADMIN_TOKEN": ADMIN_TOKEN, "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def board(base: str, level: str = "unit") -> dict[str, Any]:
    r = httpx.get(f"{base}/v1/campaigns/{CAMPAIGN}/leaderboard", params={"level": level},
                  timeout=10)
    assert r.status_code == 200, r.text
    return dict(r.json())


def valid_of(base: str, unit: str) -> int:
    return int(next(row["valid"] for row in board(base)["rows"] if row["id"] == unit))


def review(base: str, body: dict[str, Any], headers: dict[str, str] = AUTH) -> httpx.Response:
    return httpx.post(f"{base}/v1/admin/campaigns/{CAMPAIGN}/reviews", json=body,
                      headers=headers, timeout=30)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("integrity")
    srv = EmbeddedServer(root / "data").start()
    try:
        assert srv.define(definition()).status_code == 200
        now = dt.datetime.now(SHANGHAI)
        sheets = {
            "a0": sheet(CAMPAIGN, answers=answered()),
            "a1": sheet(CAMPAIGN, answers=answered()),
            "a2": sheet(CAMPAIGN, answers=answered()),
            "a3": sheet(CAMPAIGN, answers=answered()),
            "gx": sheet(CAMPAIGN, "Gx1aB2cD", answers=answered()),
            "attention": sheet(CAMPAIGN, answers=answered(ac="非常满意")),
            # 7 answered items at 10 s each: 65 s passes min_seconds (60), not the item floor.
            "per_item": sheet(CAMPAIGN, answers=answered(),
                              started_at=(now - dt.timedelta(seconds=65)).isoformat(),
                              submitted_at=now.isoformat()),
        }
        for body in sheets.values():
            r = httpx.post(f"{srv.base}/v1/submissions", json=body, timeout=10)
            assert r.status_code == 202, r.text
        verdicts = {k: status_of(srv, CAMPAIGN, b["submission_id"]) for k, b in sheets.items()}
        yield {"server": srv, "root": root, "sheets": sheets, "verdicts": verdicts}
    finally:
        srv.kill()


def test_speed_and_attention_rules_reject_with_their_own_reasons(served: dict[str, Any]) -> None:
    v = served["verdicts"]
    assert v["attention"]["status"] == "rejected"
    assert v["attention"]["reasons"] == ["attention_check_failed"]
    assert v["per_item"]["reasons"] == ["too_fast_per_item"]
    assert all(v[k]["status"] == "accepted" for k in ("a0", "a1", "a2", "a3", "gx"))


def test_answering_page_shows_the_attention_check_as_a_choice(served: dict[str, Any]) -> None:
    page = httpx.get(f"{served['server'].base}/s/Gd7kQ2xP", timeout=10)
    assert page.status_code == 200
    assert "本题请选择&#x27;比较满意&#x27;" in page.text or "本题请选择'比较满意'" in page.text
    assert 'value="非常满意"' in page.text and '"expected"' not in page.text


def test_review_decisions_move_counts_exactly_with_an_audit_trail(served: dict[str, Any]) -> None:
    base, ids = served["server"].base, {k: b["submission_id"] for k, b in served["sheets"].items()}
    board_ = board(base)
    assert board_["provisional"] is True
    assert valid_of(base, "gd-cyber") == 4

    # Bad input: 401 without the token, 404 unknown campaign, 422 with a detail otherwise.
    body = {"action": "invalid", "reason": "同一网段集中提交", "reviewer": "组委会-张",
            "submission_ids": [ids["a0"], ids["a1"]], "decision_id": "case-1"}
    assert review(base, body, headers={}).status_code == 401
    unknown = httpx.post(f"{base}/v1/admin/campaigns/nope/reviews", json=body, headers=AUTH,
                         timeout=10)
    assert unknown.status_code == 404 and "detail" in unknown.json()
    for bad in (
        {**body, "reason": ""},
        {**body, "action": "delete"},
        {**body, "link_code": "Gd7kQ2xP"},  # two targets
        {k: v for k, v in body.items() if k != "submission_ids"},  # none
        {**body, "submission_ids": [], "link_code": "NoSuch12",
         "window_start": "2026-01-01T00:00:00+08:00", "window_end": "2026-01-02T00:00:00+08:00"},
        {**body, "surprise": 1},
    ):
        r = review(base, bad)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["detail"]

    r = review(base, body)
    assert r.status_code == 200, r.text
    assert r.json()["new"] is True and r.json()["covered"] == 2
    assert valid_of(base, "gd-cyber") == 2
    status = httpx.get(f"{base}/v1/campaigns/{CAMPAIGN}/submissions/{ids['a0']}",
                       timeout=10).json()
    assert status["status"] == "rejected"
    assert status["review"] == {"decision_id": "case-1", "judged_status": "accepted"}

    again = review(base, body)  # the same decision twice changes nothing
    assert again.status_code == 200 and again.json()["new"] is False
    assert valid_of(base, "gd-cyber") == 2
    conflict = review(base, {**body, "action": "valid"})
    assert conflict.status_code == 409

    appeal = review(base, {"action": "valid", "reason": "申诉成立", "reviewer": "组委会-李",
                           "submission_ids": [ids["a1"]]})
    assert appeal.status_code == 200
    assert valid_of(base, "gd-cyber") == 3

    now = dt.datetime.now(SHANGHAI)
    window = review(base, {
        "action": "invalid", "reason": "刷量时段", "reviewer": "组委会-张",
        "link_code": "Gx1aB2cD", "window_start": (now - dt.timedelta(hours=1)).isoformat(),
        "window_end": (now + dt.timedelta(hours=1)).isoformat(),
    })
    assert window.status_code == 200 and window.json()["covered"] == 1
    assert valid_of(base, "gx-net") == 0
    provinces = {r["id"]: r for r in board(base, "province")["rows"]}
    assert provinces["45"]["valid"] == 0 and provinces["45"]["rejected"] == 1

    trail = httpx.get(f"{base}/v1/admin/campaigns/{CAMPAIGN}/reviews", headers=AUTH, timeout=10)
    assert trail.status_code == 200
    decisions = trail.json()["decisions"]
    assert [d["action"] for d in decisions] == ["invalid", "valid", "invalid"]
    first = decisions[0]
    assert (first["decision_id"], first["reviewer"], first["reason"]) == (
        "case-1", "组委会-张", "同一网段集中提交"
    )
    assert first["decided_at"] and (first["covered"], first["standing"]) == (2, 1)
    assert httpx.get(f"{base}/v1/admin/campaigns/{CAMPAIGN}/reviews",
                     timeout=10).status_code == 401
    one = httpx.get(f"{base}/v1/admin/campaigns/{CAMPAIGN}/reviews",
                    params={"submission_id": ids["a1"]}, headers=AUTH, timeout=10).json()
    assert one["judged_status"] == "accepted" and one["status"] == "accepted"
    assert [d["reason"] for d in one["decisions"]] == ["同一网段集中提交", "申诉成立"]

    # The CLI, against the running instance.
    marked = cli("review", "mark", CAMPAIGN, "--invalid", "--reason", "重复设备",
                 "--reviewer", "cli", "--submission-id", ids["a2"], "--decision-id", "cli-1",
                 "--url", base)
    assert marked["covered"] == 1 and marked["decision"]["decision_id"] == "cli-1"
    assert valid_of(base, "gd-cyber") == 2
    listed = cli("review", "list", CAMPAIGN, "--url", base)
    assert [d["decision_id"] for d in listed["decisions"]][-1] == "cli-1"


def test_pacing_says_what_is_due_by_now_and_who_is_behind(served: dict[str, Any]) -> None:
    base = served["server"].base
    r = httpx.get(f"{base}/v1/campaigns/{CAMPAIGN}/pacing", params={"level": "unit"}, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["provisional"] is True and "linear over counting days" in body["method"]
    win = body["window"]
    assert win["counting_days"] == 11 and 3 <= win["elapsed_days"] <= 4  # day 4 of 11
    for row in body["rows"]:
        assert abs(row["expected"] - row["target"] * win["share_due"]) < 1  # rounded down
        assert row["gap"] == row["valid"] - row["expected"]
        assert row["status"] == ("ahead" if row["gap"] >= 0 else "behind")
    assert body["behind"] == len(body["rows"])  # a handful of sheets against targets of 100+
    prov = httpx.get(f"{base}/v1/campaigns/{CAMPAIGN}/pacing", timeout=10).json()
    assert prov["level"] == "province" and {r["id"] for r in prov["rows"]} == {"44", "45", "31"}
    assert httpx.get(f"{base}/v1/campaigns/nope/pacing", timeout=10).status_code == 404
    assert httpx.get(f"{base}/v1/campaigns/{CAMPAIGN}/pacing", params={"level": "x"},
                     timeout=10).status_code == 422
    page = httpx.get(f"{base}/display/{CAMPAIGN}", timeout=10).text
    assert f"/v1/campaigns/{CAMPAIGN}/pacing" in page and "pace-note" in page
    assert "实时临时排名" in page


def test_median_is_published_for_the_relative_floor(served: dict[str, Any]) -> None:
    base = served["server"].base
    r = httpx.post(f"{base}/v1/admin/campaigns/{CAMPAIGN}/median", headers=AUTH, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["samples"] == 5 and 470 < body["median_seconds"] < 490  # 8-minute sheets
    assert body["in_force"] is False  # below relative_min_samples (100)
    assert dt.datetime.fromisoformat(body["effective_at"]) > dt.datetime.fromisoformat(
        body["computed_at"])


def test_final_ranking_is_reproduced_by_a_replay_of_the_log(
    served: dict[str, Any], tmp_path: Path
) -> None:
    # Runs last in the module (pytest keeps file order): it stops the server.
    srv, root = served["server"], served["root"]
    live = httpx.post(f"{srv.base}/v1/admin/campaigns/{CAMPAIGN}/freeze", headers=AUTH,
                      timeout=30)
    assert live.status_code == 200, live.text
    snap = live.json()
    content = snap["content"]
    assert content["provisional"] is False and content["rules_versions"] == ["2026.2"]
    assert len(content["review_decisions"]) == 4
    # a1 (reinstated on appeal) and a3 stand; a0, a2 and gx were marked invalid.
    assert content["totals"] == {"valid": 2, "rejected": 5, "test": 0}
    final = {k: status_of(srv, CAMPAIGN, b["submission_id"])["status"]
             for k, b in served["sheets"].items()}
    srv.stop()

    # Offline, over the same data dir: the same audit trail, the same content, the same hash.
    trail = cli("review", "list", CAMPAIGN, data_dir=srv.data_dir)
    assert [d["decision_id"] for d in trail["decisions"]] == content["review_decisions"]
    out = tmp_path / "final.json"
    written = cli("campaign", "freeze", CAMPAIGN, "--out", str(out), data_dir=srv.data_dir)
    assert written["sha256"] == snap["sha256"]
    assert json.loads(out.read_text())["content"] == content

    # A replay: only the two logs, judged again from scratch into a fresh store.
    fresh = root / "replayed"
    fresh.mkdir()
    for log_name in ("raw", "registry"):
        shutil.copytree(srv.data_dir / log_name, fresh / log_name)
    again = EmbeddedServer(fresh).start()
    try:
        # Each sheet's status as the live run left it, review decisions included (they are
        # applied right after a batch is stored, so a read in between may be a moment early).
        for key, body in served["sheets"].items():
            deadline = time.monotonic() + 30
            while status_of(again, CAMPAIGN, body["submission_id"])["status"] != final[key]:
                assert time.monotonic() < deadline, f"{key} never became {final[key]}"
                time.sleep(0.1)
        replayed = httpx.post(f"{again.base}/v1/admin/campaigns/{CAMPAIGN}/freeze",
                              headers=AUTH, timeout=30).json()
    finally:
        again.stop()
    assert replayed["content"] == content
    assert replayed["sha256"] == snap["sha256"]
