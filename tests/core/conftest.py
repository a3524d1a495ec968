"""Builders shared by the core tests: a small campaign, answer sheets as received, judging.

The builders are plain functions handed out by session-scoped fixtures, so the hypothesis
property tests can use them too (a function-scoped fixture would be shared across examples).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pytest

from core.judge import JudgeState, judge
from core.registry import Registry
from schemas.campaign import CampaignDefinition
from schemas.events import CampaignDefined, SubmissionJudged, SubmissionReceived

UTC = dt.UTC
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
HASH_KEY = "test-hash-key"
CAMPAIGN = "2023"
VERSION = "2023.1"
# Loaded well before every phase, so nothing in the definition is "from then on" by accident.
DEFINED_AT = dt.datetime(2023, 9, 1, tzinfo=UTC)
# 2023-09-14 10:10 in Shanghai: the middle of the collection phase.
RECEIVED_AT = dt.datetime(2023, 9, 14, 2, 10, tzinfo=UTC)

CAMPAIGN_DICT: dict[str, Any] = {
    "campaign": CAMPAIGN,
    "timezone": "Asia/Shanghai",
    "phases": [
        {"name": "internal_test", "start": "2023-09-08", "end": "2023-09-09", "counts": False},
        {"name": "public_test", "start": "2023-09-11", "end": "2023-09-12", "counts": False},
        {"name": "collection", "start": "2023-09-13", "end": "2023-09-22", "counts": True},
    ],
    "work_regions": [
        {"id": "south", "name": "华南"},
        {"id": "east", "name": "华东"},
        {"id": "north", "name": "华北"},
    ],
    "provinces": [
        # targets: 44 -> 1000, 45 -> 400, 31 -> 200, 11 -> 300
        {"id": "44", "name": "广东", "work_region": "south", "internet_users": 100_000,
         "target_rate": 0.01},
        {"id": "45", "name": "广西", "work_region": "south", "internet_users": 40_000,
         "target_rate": 0.01},
        {"id": "31", "name": "上海", "work_region": "east", "internet_users": 20_000,
         "target_rate": 0.01},
        {"id": "11", "name": "北京", "work_region": "north", "internet_users": 60_000,
         "target_rate": 0.005},
    ],
    "units": [
        {"id": "gd-cyber", "name": "广东省网络空间安全协会", "kind": "initiating",
         "province": "44", "planned_samples": 500},
        {"id": "gd-uni", "name": "广东某大学", "kind": "supporting", "province": "44",
         "planned_samples": 300},
        {"id": "gx-net", "name": "广西网信办", "kind": "initiating", "province": "45",
         "planned_samples": 200},
        {"id": "sh-vol", "name": "上海志愿者站", "kind": "volunteer", "province": "31",
         "planned_samples": 100},
        {"id": "bj-net", "name": "北京网信办", "kind": "initiating", "province": "11",
         "planned_samples": 100},
    ],
    "links": [
        {"code": "Gd7kQ2xP", "unit": "gd-cyber", "channel": "wechat"},
        {"code": "Gd7kQ2xW", "unit": "gd-cyber", "channel": "weibo"},
        {"code": "GdUni001", "unit": "gd-uni", "channel": "web"},
        {"code": "Gx1aB2cD", "unit": "gx-net", "channel": "wechat"},
        {"code": "Sh9zY8xW", "unit": "sh-vol", "channel": "poster"},
        {"code": "Bj0000aa", "unit": "bj-net", "channel": "web"},
    ],
    "questionnaire": {
        "version": VERSION,
        "min_seconds": 60,
        "questions": [
            {"id": "q1", "type": "scale", "min": 1, "max": 5, "required": True},
            {"id": "q2", "type": "single", "options": ["a", "b", "c"], "required": True},
            {"id": "q3", "type": "multi", "options": ["a", "b", "c", "d"], "max_choices": 3},
            {"id": "q4", "type": "text", "max_length": 200},
            {"id": "s1", "type": "scale", "min": 1, "max": 5},
            {"id": "s2", "type": "scale", "min": 1, "max": 5},
            {"id": "s3", "type": "scale", "min": 1, "max": 5},
            {"id": "s4", "type": "scale", "min": 1, "max": 5},
        ],
    },
}

# Valid, and varied enough on the five scale items (q1, s1-s4) not to be straight-lining.
DEFAULT_ANSWERS: dict[str, Any] = {
    "q1": 4, "q2": "b", "q3": ["a", "c"], "q4": "free text",
    "s1": 3, "s2": 4, "s3": 2, "s4": 5,
}


def make_campaign_dict(**overrides: Any) -> dict[str, Any]:
    """The campaign as an organiser would write it, with top-level keys replaced."""
    data = copy.deepcopy(CAMPAIGN_DICT)
    data.update(copy.deepcopy(overrides))
    return data


def make_campaign(**overrides: Any) -> CampaignDefinition:
    return CampaignDefinition.model_validate(make_campaign_dict(**overrides))


def make_registry(
    *definitions: CampaignDefinition | tuple[CampaignDefinition, dt.datetime],
) -> Registry:
    """A registry with each definition loaded in order (at DEFINED_AT unless a time is given)."""
    registry = Registry()
    for item in definitions or (make_campaign(),):
        defn, at = item if isinstance(item, tuple) else (item, DEFINED_AT)
        registry.apply(CampaignDefined(campaign=defn.campaign, defined_at=at, definition=defn))
    return registry


_submission_serial = 0


def make_submission(
    *,
    received_at: dt.datetime = RECEIVED_AT,
    client: str = "",
    answers: dict[str, Any] | None = None,
    merge_answers: bool = True,
    omit_answers: Iterable[str] = (),
    omit: Iterable[str] = (),
    duration: float = 8.5 * 60,
    **overrides: Any,
) -> SubmissionReceived:
    """A valid answer sheet as the collector appended it; `overrides` replace body fields.

    `answers` is merged onto the default answers (or used as given with merge_answers=False);
    `omit_answers` and `omit` drop answers and
    body fields. Unless given, started_at/submitted_at bracket `duration` seconds ending 30 s
    before the receive time, so a sheet is never too fast by accident.
    """
    global _submission_serial
    _submission_serial += 1
    submitted = (received_at - dt.timedelta(seconds=30)).astimezone(SHANGHAI)
    started = submitted - dt.timedelta(seconds=duration)
    base = DEFAULT_ANSWERS if merge_answers else {}
    merged = {**base, **(answers or {})}
    for qid in omit_answers:
        merged.pop(qid, None)
    body: dict[str, Any] = {
        "submission_id": f"sub-{_submission_serial:06d}",
        "campaign": CAMPAIGN,
        "link_code": "Gd7kQ2xP",
        "questionnaire_version": VERSION,
        "started_at": started.isoformat(),
        "submitted_at": submitted.isoformat(),
        "respondent": {"province": "44", "city": "4401", "age_group": "25-34"},
        "device_id": f"device-{_submission_serial:06d}",
        "answers": merged,
        "opinion": "希望加强个人信息保护",
    }
    body.update(overrides)
    for key in omit:
        body.pop(key, None)
    return SubmissionReceived(received_at=received_at, client=client, body=body)


def resend_of(
    event: SubmissionReceived, received_at: dt.datetime | None = None
) -> SubmissionReceived:
    """The same body again (a client retry), received at another time if given."""
    return SubmissionReceived(
        received_at=received_at or event.received_at, client=event.client, body=event.body
    )


Judged = list[tuple[SubmissionJudged, bool]]


def judge_stream(
    registry: Registry,
    events: Sequence[SubmissionReceived],
    state: JudgeState | None = None,
) -> Judged:
    """Judge events in log order against one state; each verdict with its resend flag."""
    state = state if state is not None else JudgeState.empty()
    return [
        judge(event, f"0:{offset}", registry, state, HASH_KEY)
        for offset, event in enumerate(events)
    ]


def judge_one(event: SubmissionReceived, registry: Registry | None = None) -> SubmissionJudged:
    judged, _ = judge_stream(registry or make_registry(), [event])[0]
    return judged


@pytest.fixture(scope="session", name="make_campaign")
def _make_campaign() -> Callable[..., CampaignDefinition]:
    return make_campaign


@pytest.fixture(scope="session", name="make_campaign_dict")
def _make_campaign_dict() -> Callable[..., dict[str, Any]]:
    return make_campaign_dict


@pytest.fixture(scope="session", name="make_registry")
def _make_registry() -> Callable[..., Registry]:
    return make_registry


@pytest.fixture(scope="session", name="make_submission")
def _make_submission() -> Callable[..., SubmissionReceived]:
    return make_submission


@pytest.fixture(scope="session", name="resend_of")
def _resend_of() -> Callable[..., SubmissionReceived]:
    return resend_of


@pytest.fixture(scope="session", name="judge_stream")
def _judge_stream() -> Callable[..., Judged]:
    return judge_stream


@pytest.fixture(scope="session", name="judge_one")
def _judge_one() -> Callable[..., SubmissionJudged]:
    return judge_one


@pytest.fixture(scope="session")
def hash_key() -> str:
    return HASH_KEY
