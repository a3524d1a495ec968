"""Regional queries through a real `survey-ingest serve` process: sheets posted over HTTP,
judged and stored by the embedded runtime (chDB), then counted and broken down by the API."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.helpers import campaign_definition, sheet, status_of
from tests.integration.embedded_server import ADMIN, EmbeddedServer

# Real servers on loopback: sockets allowed (tests/conftest.py).
pytestmark = pytest.mark.integration

CAMPAIGN = "c-regional"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def answers(q1: int, q2: str, q3: list[str], q4: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"q1": q1, "q2": q2, "q3": q3}
    if q4 is not None:
        out["q4"] = q4
    return out


# name -> (sheet, expected status, expected reasons)
def scenario_sheets() -> dict[str, tuple[dict[str, Any], str, list[str]]]:
    gd_resp = {"province": "44", "city": "4401"}
    cases: dict[str, tuple[dict[str, Any], str, list[str]]] = {}
    for k, q1 in enumerate((5, 4, 3)):
        cases[f"gd-wechat-{k}"] = (
            sheet(CAMPAIGN, "Gd7kQ2xP", respondent=gd_resp,
                  answers=answers(q1, "b", ["a", "c"], "多一些宣传")),
            "accepted", [],
        )
    for k in range(2):
        cases[f"gd-weibo-{k}"] = (
            sheet(CAMPAIGN, "Gd7kQ2xQ", respondent={"province": "45", "city": "4501"},
                  answers=answers(2, "a", ["b"])),
            "accepted", [],
        )
    for k in range(2):
        cases[f"gx-{k}"] = (
            sheet(CAMPAIGN, "Gx1aB2cD", respondent={"province": "44", "city": "4403"},
                  answers=answers(1, "c", ["a", "b", "d"])),
            "accepted", [],
        )
    cases["sh"] = (sheet(CAMPAIGN, "Sh9zY8xW"), "accepted", [])  # q1 4, q2 b, q3 [a, c], q4
    fast = sheet(CAMPAIGN, "Gd7kQ2xP", respondent=gd_resp, answers=answers(1, "a", ["d"]))
    fast["started_at"] = fast["submitted_at"]
    cases["too_fast"] = (fast, "rejected", ["too_fast"])
    cases["invalid"] = (
        sheet(CAMPAIGN, "Gx1aB2cD", respondent={"province": "44", "city": "4403"},
              answers=answers(9, "a", ["d"])),
        "rejected", ["invalid_answer"],
    )
    cases["unknown_link"] = (sheet(CAMPAIGN, "NoSuch12"), "rejected", ["unknown_link"])
    cases["revoked"] = (sheet(CAMPAIGN, "Sh9zY8xR"), "rejected", ["revoked_link"])
    return cases


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    srv = EmbeddedServer(tmp_path_factory.mktemp("regional") / "data").start()
    try:
        r = srv.define(campaign_definition(CAMPAIGN))
        assert r.status_code == 200, r.text
        for name, (body, status, reasons) in scenario_sheets().items():
            r = httpx.post(f"{srv.base}/v1/submissions", json=body, timeout=10)
            assert r.status_code == 202, (name, r.text)
            got = status_of(srv, CAMPAIGN, body["submission_id"])
            assert (got["status"], got["reasons"]) == (status, reasons), (name, got)
        yield srv
    finally:
        srv.kill()


def counts(server: EmbeddedServer, **params: str) -> httpx.Response:
    return httpx.get(f"{server.base}/v1/campaigns/{CAMPAIGN}/counts", params=params,
                     headers=ADMIN, timeout=10)


def rows_of(server: EmbeddedServer, **params: str) -> dict[tuple[Any, ...], tuple[int, int, int]]:
    r = counts(server, **params)
    assert r.status_code == 200, r.text
    body = r.json()
    by = body["by"]
    assert body["campaign"] == CAMPAIGN
    out = {}
    for row in body["rows"]:
        # Answering-page loads (opens) come with groupings and filters they have a meaning for.
        opens = set(by) <= {"unit", "link", "channel", "day"} and set(body["filters"]) <= {
            "unit", "link", "channel", "province", "work_region", "date_from", "date_to"}
        assert set(row) == {*by, "valid", "rejected", "test", "conflicts",
                            *(["opens"] if opens else [])}
        out[tuple(row[name] for name in by)] = (row["valid"], row["rejected"], row["test"])
    return out


def distribution(server: EmbeddedServer, qid: str, **params: str) -> httpx.Response:
    return httpx.get(
        f"{server.base}/v1/campaigns/{CAMPAIGN}/questions/{qid}/distribution",
        params=params, headers=ADMIN, timeout=10,
    )


def test_counts_by_credited_province(server: EmbeddedServer) -> None:
    r = counts(server, by="province")
    assert r.json()["by"] == ["province"] and r.json()["filters"] == {}
    assert rows_of(server, by="province") == {
        (None,): (0, 1, 0),  # the unknown link is credited to no province
        ("31",): (1, 1, 0),
        ("44",): (5, 1, 0),
        ("45",): (2, 1, 0),
    }


def test_counts_by_unit_and_channel(server: EmbeddedServer) -> None:
    assert rows_of(server, by="unit,channel") == {
        (None, None): (0, 1, 0),
        ("gd-cyber", "wechat"): (3, 1, 0),
        ("gd-cyber", "weibo"): (2, 0, 0),
        ("gx-net", "wechat"): (2, 1, 0),
        ("sh-uni", "poster"): (0, 1, 0),
        ("sh-uni", "web"): (1, 0, 0),
    }


def test_counts_by_respondent_city_in_a_work_region(server: EmbeddedServer) -> None:
    r = counts(server, by="city", work_region="south")
    assert r.json()["filters"] == {"work_region": "south"}
    assert rows_of(server, by="city", work_region="south") == {
        ("4401",): (3, 1, 0),
        ("4403",): (2, 1, 0),
        ("4501",): (2, 0, 0),
    }
    assert rows_of(server, by="respondent_province", channel="wechat", province="45") == {
        ("44",): (2, 1, 0),
    }


def test_counts_by_status_and_reason(server: EmbeddedServer) -> None:
    assert rows_of(server, by="status,reason") == {
        ("accepted", None): (8, 0, 0),
        ("rejected", "invalid_answer"): (0, 1, 0),
        ("rejected", "revoked_link"): (0, 1, 0),
        ("rejected", "too_fast"): (0, 1, 0),
        ("rejected", "unknown_link"): (0, 1, 0),
    }


def test_counts_by_day_and_hour_and_date_ranges(server: EmbeddedServer) -> None:
    today = dt.datetime.now(SHANGHAI).date()
    by_day = rows_of(server, by="day,hour")
    assert sum(v for v, _, _ in by_day.values()) == 8
    assert sum(r for _, r, _ in by_day.values()) == 4
    for day, hour in by_day:
        assert abs((dt.date.fromisoformat(day) - today).days) <= 1 and 0 <= hour <= 23
    window = {"date_from": str(today - dt.timedelta(days=1)),
              "date_to": str(today + dt.timedelta(days=1))}
    assert rows_of(server, **window) == {(): (8, 4, 0)}
    assert rows_of(server, date_from=str(today + dt.timedelta(days=2))) == {(): (0, 0, 0)}
    assert rows_of(server, by="phase", phase="collection") == {("collection",): (8, 4, 0)}


def test_scale_distribution_over_the_whole_campaign(server: EmbeddedServer) -> None:
    r = distribution(server, "q1")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "campaign": CAMPAIGN, "question": "q1", "label": "", "type": "scale",
        "options": ["1", "2", "3", "4", "5"], "filters": {}, "scope": {}, "accepted": 8, "total": 8,
        "counts": {"1": 2, "2": 2, "3": 1, "4": 2, "5": 1},
    }


def test_multi_choice_distribution_by_province_and_work_region(server: EmbeddedServer) -> None:
    body = distribution(server, "q3", province="44").json()
    assert (body["type"], body["options"]) == ("multi", ["a", "b", "c", "d"])
    assert (body["accepted"], body["total"]) == (5, 5)
    assert body["counts"] == {"a": 3, "b": 2, "c": 3, "d": 0}
    body = distribution(server, "q3", work_region="south").json()
    assert body["filters"] == {"work_region": "south"}
    assert (body["accepted"], body["total"]) == (7, 7)
    assert body["counts"] == {"a": 5, "b": 4, "c": 3, "d": 2}


def test_single_choice_and_text_distributions(server: EmbeddedServer) -> None:
    body = distribution(server, "q2", city="4403").json()
    assert (body["accepted"], body["counts"]) == (2, {"a": 0, "b": 0, "c": 2})
    body = distribution(server, "q4").json()
    assert (body["type"], body["accepted"], body["total"], body["counts"]) == ("text", 8, 4, {})


def test_unknown_campaign_or_question_is_404(server: EmbeddedServer) -> None:
    for r in (
        httpx.get(f"{server.base}/v1/campaigns/nope/counts", headers=ADMIN, timeout=10),
        httpx.get(f"{server.base}/v1/campaigns/nope/questions/q1/distribution", headers=ADMIN,
                  timeout=10),
        distribution(server, "q99"),
        distribution(server, "q1'; DROP TABLE submissions; --"),
    ):
        assert r.status_code == 404, r.text
        assert isinstance(r.json()["detail"], str)


@pytest.mark.parametrize(
    "params",
    [
        {"by": "nope"},
        {"by": "province,province"},
        {"by": "province;DROP TABLE submissions"},
        {"by": "province,"},
        {"date_from": "2026-13-01"},
        {"date_from": "2026-11-22", "date_to": "2026-11-20"},
        {"province": "44' OR '1'='1"},
        {"unit": "x'); DROP TABLE submissions; --"},
        {"link": "Gd7kQ2xP' OR 1=1 --"},
        {"phase": ""},
        {"channel": "x" * 65},
    ],
)
def test_bad_grouping_or_filter_value_is_422(
    server: EmbeddedServer, params: dict[str, str]
) -> None:
    for r in (counts(server, **params), distribution(server, "q1", **params)):
        if "by" in params and r.url.path.endswith("distribution"):
            continue  # distribution takes no `by`
        assert r.status_code == 422, (params, r.text)
        assert "detail" in r.json()


@pytest.mark.parametrize(
    "params",
    [
        {"channel": "wechat' OR '1'='1"},
        {"city": "4401\\' OR 1=1 --"},
        {"respondent_province": "'); DROP TABLE submissions; --"},
        {"city": "nul\0inside"},
    ],
)
def test_injection_in_free_text_filters_matches_nothing(
    server: EmbeddedServer, params: dict[str, str]
) -> None:
    assert rows_of(server, by="province", **params) == {}
    body = distribution(server, "q1", **params).json()
    assert (body["accepted"], body["total"]) == (0, 0)
    assert rows_of(server) == {(): (8, 4, 0)}  # and everything is still there


def test_query_latency_is_recorded_per_endpoint(server: EmbeddedServer) -> None:
    counts(server, by="unit")
    distribution(server, "q1")
    text = httpx.get(f"{server.base}/metrics", headers=ADMIN, timeout=10).text
    for endpoint in ("counts", "distribution"):
        assert f'survey_api_query_duration_seconds_count{{endpoint="{endpoint}"}}' in text
