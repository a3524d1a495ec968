"""The example campaign and the demo/benchmark traffic generator."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import re
import statistics
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from core.judge import JudgeState, judge
from core.registry import Registry
from schemas.campaign import (
    CampaignDefinition,
    MultiQuestion,
    ScaleQuestion,
    SingleQuestion,
    TextQuestion,
    load_campaign_file,
)
from schemas.envelope import MAX_BODY_BYTES, SubmissionEnvelope
from schemas.events import CampaignDefined, SubmissionReceived
from simulation import EXAMPLE_CAMPAIGN
from simulation.generator import (
    DEFAULT_FLAW_WEIGHTS,
    FLAW_KINDS,
    FLAW_REASONS,
    GeneratedSheet,
    SheetFactory,
    generate_sheet,
    make_sheet,
)
from simulation.traffic import RetryPolicy, run_generator

# The demo runs on this day; the example campaign must be counting then.
DEMO_DAY = dt.date(2026, 11, 29)
NOW = dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
GB2260 = {
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65",
}
REGIONS = {
    "north": "华北", "northeast": "东北", "east": "华东", "central": "华中",
    "south": "华南", "southwest": "西南", "northwest": "西北",
}


@pytest.fixture(scope="module")
def campaign() -> CampaignDefinition:
    return load_campaign_file(EXAMPLE_CAMPAIGN)


def _stream(
    definition: CampaignDefinition, seed: int, n: int, valid_share: float = 0.9
) -> list[GeneratedSheet]:
    rng = random.Random(seed)
    step = dt.timedelta(milliseconds=50)
    return [
        generate_sheet(definition, rng, NOW + i * step, valid_share=valid_share) for i in range(n)
    ]


# -- the example campaign ------------------------------------------------------------------------


def test_example_campaign_has_the_seven_work_regions_and_31_provinces(
    campaign: CampaignDefinition,
) -> None:
    assert {r.id: r.name for r in campaign.work_regions} == REGIONS
    assert {p.id for p in campaign.provinces} == GB2260
    names = {p.id: p.name for p in campaign.provinces}
    assert (names["11"], names["44"], names["65"]) == ("北京", "广东", "新疆")
    for p in campaign.provinces:
        assert 0.005 <= p.target_rate <= 0.01
        assert p.internet_users > 0
    total = sum(p.internet_users for p in campaign.provinces)
    assert 0.9e9 < total < 1.2e9  # placeholders near the published national figure


def test_example_campaign_has_about_135_units_each_with_several_links(
    campaign: CampaignDefinition,
) -> None:
    assert 120 <= len(campaign.units) <= 150
    assert {u.kind for u in campaign.units} == {"initiating", "supporting", "volunteer"}
    assert {u.province for u in campaign.units} == GB2260  # every province has a unit
    links_per_unit = Counter(lk.unit for lk in campaign.links)
    usable_per_unit = Counter(lk.unit for lk in campaign.links if not lk.revoked)
    for u in campaign.units:
        assert 2 <= links_per_unit[u.id] <= 5, u.id
        assert usable_per_unit[u.id] >= 2, u.id
        assert u.planned_samples > 0
    for lk in campaign.links:
        assert re.fullmatch(r"[A-Za-z0-9]{8}", lk.code), lk.code
        assert lk.channel in {"wechat", "weibo", "qq", "web", "poster"}


def test_example_campaign_counts_on_the_demo_day_after_its_test_phases(
    campaign: CampaignDefinition,
) -> None:
    (today,) = [p for p in campaign.phases if p.start <= DEMO_DAY <= p.end]
    assert today.counts
    tests = [p for p in campaign.phases if not p.counts]
    assert {p.name for p in tests} == {"internal_test", "public_test"}
    assert all(p.end < DEMO_DAY for p in tests)
    assert campaign.timezone == "Asia/Shanghai"


def test_example_questionnaire_covers_every_question_type(campaign: CampaignDefinition) -> None:
    q = campaign.questionnaire
    assert (q.version, q.min_seconds, q.straight_lining_min_items) == ("2026.1", 60, 5)
    assert 10 <= len(q.questions) <= 14
    types = Counter(type(x) for x in q.questions)
    assert types[ScaleQuestion] >= 6
    assert types[SingleQuestion] >= 1 and types[TextQuestion] >= 1
    multis = [x for x in q.questions if isinstance(x, MultiQuestion)]
    assert multis and all(m.max_choices for m in multis)
    assert all(x.label for x in q.questions)


# -- sheets ----------------------------------------------------------------------------------------


def test_every_generated_sheet_is_a_valid_envelope(campaign: CampaignDefinition) -> None:
    sheets = _stream(campaign, seed=1, n=3000, valid_share=0.5)
    assert {s.flaw for s in sheets} == {None, *FLAW_KINDS}
    for s in sheets:
        env = SubmissionEnvelope.model_validate(s.body)
        assert env.campaign == "2026" and env.questionnaire_version == "2026.1"
        assert len(json.dumps(s.body, ensure_ascii=False).encode()) < MAX_BODY_BYTES
        assert env.started_at.utcoffset() == dt.timedelta(hours=8)
        assert env.submitted_at <= NOW + dt.timedelta(hours=1)


def test_valid_sheets_are_accepted_and_each_flaw_draws_its_reason(
    campaign: CampaignDefinition,
) -> None:
    registry = Registry()
    registry.apply(CampaignDefined(
        campaign=campaign.campaign, defined_at=NOW - dt.timedelta(days=20), definition=campaign
    ))
    state = JudgeState.empty()
    sheets = _stream(campaign, seed=2, n=4000, valid_share=0.6)
    seen: Counter[str] = Counter()
    for offset, sheet in enumerate(sheets):
        received = SubmissionReceived(
            received_at=NOW + dt.timedelta(milliseconds=50 * offset + 300), body=sheet.body
        )
        verdict, resend = judge(received, f"0:{offset}", registry, state, "key")
        kind = sheet.flaw or "valid"
        seen[kind] += 1
        if sheet.flaw is None or sheet.flaw == "identical_resend":
            assert (verdict.status, verdict.reasons) == ("accepted", ()), (kind, sheet.body)
            assert resend == (sheet.flaw == "identical_resend")
        else:
            assert verdict.status == "rejected"
            assert set(verdict.reasons) == {FLAW_REASONS[sheet.flaw]}, (kind, sheet.body)
            assert not resend
    assert set(seen) == {"valid", *FLAW_KINDS}


def test_the_generator_is_deterministic_for_a_seed(campaign: CampaignDefinition) -> None:
    first = [s.body for s in _stream(campaign, seed=42, n=500)]
    again = [s.body for s in _stream(campaign, seed=42, n=500)]
    other = [s.body for s in _stream(campaign, seed=43, n=500)]
    assert first == again
    assert first != other
    # make_sheet is the same stream, body only.
    rng = random.Random(42)
    assert [make_sheet(campaign, rng, NOW + i * dt.timedelta(milliseconds=50))
            for i in range(500)] == first


@pytest.mark.parametrize("valid_share", [0.9, 0.6, 1.0])
def test_flawed_kinds_appear_at_roughly_the_requested_share(
    campaign: CampaignDefinition, valid_share: float
) -> None:
    n = 12_000
    kinds = Counter(s.flaw for s in _stream(campaign, seed=3, n=n, valid_share=valid_share))
    assert kinds[None] / n == pytest.approx(valid_share, abs=0.01)
    total_weight = sum(DEFAULT_FLAW_WEIGHTS.values())
    for kind in FLAW_KINDS:
        expected = (1 - valid_share) * DEFAULT_FLAW_WEIGHTS[kind] / total_weight
        assert kinds[kind] / n == pytest.approx(expected, abs=0.2 * expected + 0.002), kind


def test_flaw_weights_choose_which_flaws_are_made(campaign: CampaignDefinition) -> None:
    factory = SheetFactory(campaign, valid_share=0.5, flaw_weights={"too_fast": 1.0})
    rng = random.Random(4)
    kinds = Counter(factory.make(rng, NOW).flaw for _ in range(1000))
    assert set(kinds) == {None, "too_fast"}
    with pytest.raises(ValueError, match="unknown flaw kinds"):
        SheetFactory(campaign, flaw_weights={"sloppy": 1.0})  # type: ignore[dict-item]


def test_valid_sheets_look_like_real_traffic(campaign: CampaignDefinition) -> None:
    valid = [s.body for s in _stream(campaign, seed=5, n=10_000) if s.flaw is None]
    unit_of = {lk.code: lk.unit for lk in campaign.links}
    province_of = {u.id: u.province for u in campaign.units}

    def seconds(b: dict[str, Any]) -> float:
        span = dt.datetime.fromisoformat(b["submitted_at"]) - dt.datetime.fromisoformat(
            b["started_at"])
        return span.total_seconds()

    durations = [seconds(b) for b in valid]
    assert min(durations) >= campaign.questionnaire.min_seconds
    assert sum(120 <= d <= 900 for d in durations) / len(durations) > 0.8
    home = sum(b["respondent"]["province"] == province_of[unit_of[b["link_code"]]] for b in valid)
    assert home / len(valid) > 0.8
    assert all(re.fullmatch(re.escape(b["respondent"]["province"]) + r"\d\d",
                            b["respondent"]["city"]) for b in valid)
    assert 0.07 < sum("opinion" in b for b in valid) / len(valid) < 0.13
    assert len({b["device_id"] for b in valid if "device_id" in b}) == sum(
        "device_id" in b for b in valid)
    # Units progress unevenly: the leaders collect many times what a typical unit does.
    per_unit = Counter(unit_of[b["link_code"]] for b in valid)
    assert per_unit.most_common(1)[0][1] > 4 * statistics.median(per_unit.values())
    used = {b["link_code"] for b in valid}
    assert not any(lk.revoked for lk in campaign.links if lk.code in used)


# -- posting (against a mock transport; the lead tests it against a running server) -------------


def test_run_generator_resends_the_same_body_until_it_is_taken(
    campaign: CampaignDefinition,
) -> None:
    # Each distinct body fails once to connect, then gets a 503, then is taken: a retry that
    # posted anything but the same bytes would start over and never be taken.
    attempts: Counter[bytes] = Counter()

    def handler(request: httpx.Request) -> httpx.Response:
        attempts[request.content] += 1
        if attempts[request.content] == 1:
            raise httpx.ConnectError("refused", request=request)
        if attempts[request.content] == 2:
            return httpx.Response(503, json={"detail": "log unavailable"})
        sid = json.loads(request.content)["submission_id"]
        return httpx.Response(202, json={"submission_id": sid, "status": "received"})

    stats = asyncio.run(run_generator(
        "http://collector.test/", campaign, rate_per_s=200, duration_s=0.3, concurrency=4,
        seed=1, retry=RetryPolicy(first_backoff_s=0.001, max_backoff_s=0.01),
        transport=httpx.MockTransport(handler),
    ))
    assert stats.accepted > 20
    assert stats.generated == stats.accepted + stats.refused + stats.gave_up + stats.unsent
    assert stats.transport_errors == len(attempts)
    assert stats.statuses[202] == stats.accepted
    # Only what was still waiting to retry when the run ended is given up.
    assert stats.errors == stats.gave_up <= 4


def test_run_generator_honours_retry_after_and_does_not_retry_a_refusal(
    campaign: CampaignDefinition,
) -> None:
    times: dict[str, list[float]] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        attempts = times.setdefault(body["submission_id"], [])
        attempts.append(time.monotonic())
        if len(times) % 2:  # every other sheet is refused outright
            return httpx.Response(422, json={"detail": [{"loc": ["body"], "msg": "bad"}]})
        if len(attempts) == 1:
            return httpx.Response(429, headers={"retry-after": "0.2"}, json={"detail": "slow"})
        return httpx.Response(202, json={"submission_id": body["submission_id"]})

    stats = asyncio.run(run_generator(
        "http://collector.test", campaign, rate_per_s=50, duration_s=0.6, concurrency=8, seed=2,
        retry=RetryPolicy(first_backoff_s=0.001), transport=httpx.MockTransport(handler),
    ))
    assert stats.refused > 0 and stats.accepted > 0
    assert stats.statuses[422] == stats.refused  # a refusal is never retried
    retried = [t for t in times.values() if len(t) > 1]
    assert retried and all(t[1] - t[0] >= 0.19 for t in retried)


def test_run_generator_stops_when_told(campaign: CampaignDefinition) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"retry-after": "30"}, json={"detail": "down"})

    async def scenario() -> tuple[float, Any]:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.3, stop.set)
        started = time.monotonic()
        stats = await run_generator(
            "http://collector.test", campaign, rate_per_s=100, duration_s=None, concurrency=4,
            stop_event=stop, seed=3, transport=httpx.MockTransport(handler),
        )
        return time.monotonic() - started, stats

    elapsed, stats = asyncio.run(scenario())
    assert elapsed < 2  # not waiting out a 30 s Retry-After
    assert stats.accepted == 0 and stats.gave_up > 0
    assert stats.generated == stats.accepted + stats.refused + stats.gave_up + stats.unsent


def test_run_generator_posts_the_seeded_stream_in_order(campaign: CampaignDefinition) -> None:
    posted: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["content-type"] == "application/json"
        assert request.url.path == "/v1/submissions"
        posted.append(json.loads(request.content))
        return httpx.Response(202, json={"status": "received"})

    stats = asyncio.run(run_generator(
        "http://collector.test", campaign, rate_per_s=100, duration_s=0.3, concurrency=1,
        seed=9, transport=httpx.MockTransport(handler),
    ))
    assert stats.accepted == len(posted) > 10
    rng = random.Random(9)
    expected = [make_sheet(campaign, rng, NOW) for _ in posted]
    strip = ("started_at", "submitted_at")  # these follow the clock
    assert [{k: v for k, v in b.items() if k not in strip} for b in posted] == [
        {k: v for k, v in b.items() if k not in strip} for b in expected
    ]
