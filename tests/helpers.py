"""Builders shared by the HTTP-level tests: campaign definitions and answer sheets."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any


def campaign_definition(campaign: str, *, today_phase: str = "collection") -> dict[str, Any]:
    """A small campaign whose phase covering today is `today_phase` ("collection", "public_test"
    or "none" for a campaign whose window is closed)."""
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
    day = dt.timedelta(days=1)
    if today_phase == "collection":
        phases = [
            {
                "name": "public_test",
                "start": str(today - 5 * day),
                "end": str(today - 4 * day),
                "counts": False,
            },
            {
                "name": "collection",
                "start": str(today - 3 * day),
                "end": str(today + 7 * day),
                "counts": True,
            },
        ]
    elif today_phase == "public_test":
        phases = [
            {
                "name": "public_test",
                "start": str(today - day),
                "end": str(today + day),
                "counts": False,
            },
            {
                "name": "collection",
                "start": str(today + 2 * day),
                "end": str(today + 9 * day),
                "counts": True,
            },
        ]
    else:
        phases = [
            {
                "name": "collection",
                "start": str(today - 30 * day),
                "end": str(today - 20 * day),
                "counts": True,
            },
        ]
    return {
        "campaign": campaign,
        "timezone": "Asia/Shanghai",
        "phases": phases,
        "work_regions": [{"id": "south", "name": "华南"}, {"id": "east", "name": "华东"}],
        "provinces": [
            {
                "id": "44",
                "name": "广东",
                "work_region": "south",
                "internet_users": 100000,
                "target_rate": 0.01,
            },
            {
                "id": "45",
                "name": "广西",
                "work_region": "south",
                "internet_users": 40000,
                "target_rate": 0.01,
            },
            {
                "id": "31",
                "name": "上海",
                "work_region": "east",
                "internet_users": 20000,
                "target_rate": 0.01,
            },
        ],
        "units": [
            {
                "id": "gd-cyber",
                "name": "广东省网络空间安全协会",
                "province": "44",
                "planned_samples": 500,
            },
            {"id": "gx-net", "name": "广西网信办", "province": "45", "planned_samples": 300},
            {
                "id": "sh-uni",
                "name": "上海某大学",
                "kind": "supporting",
                "province": "31",
                "planned_samples": 100,
            },
        ],
        "links": [
            {"code": "Gd7kQ2xP", "unit": "gd-cyber", "channel": "wechat"},
            {"code": "Gd7kQ2xQ", "unit": "gd-cyber", "channel": "weibo"},
            {"code": "Gx1aB2cD", "unit": "gx-net", "channel": "wechat"},
            {"code": "Sh9zY8xW", "unit": "sh-uni", "channel": "web"},
            {"code": "Sh9zY8xR", "unit": "sh-uni", "channel": "poster", "revoked": True},
        ],
        "questionnaire": {
            "version": "2023.1",
            "min_seconds": 60,
            "questions": [
                {"id": "q1", "type": "scale", "min": 1, "max": 5, "required": True},
                {"id": "q2", "type": "single", "options": ["a", "b", "c"], "required": True},
                {"id": "q3", "type": "multi", "options": ["a", "b", "c", "d"], "max_choices": 3},
                {"id": "q4", "type": "text", "max_length": 2000},
                {"id": "s1", "type": "scale", "min": 1, "max": 5},
                {"id": "s2", "type": "scale", "min": 1, "max": 5},
                {"id": "s3", "type": "scale", "min": 1, "max": 5},
                {"id": "s4", "type": "scale", "min": 1, "max": 5},
            ],
        },
    }


def sheet(campaign: str, link_code: str = "Gd7kQ2xP", **overrides: Any) -> dict[str, Any]:
    now = dt.datetime.now(dt.timezone(dt.timedelta(hours=8)))
    body: dict[str, Any] = {
        "submission_id": str(uuid.uuid4()),
        "campaign": campaign,
        "link_code": link_code,
        "questionnaire_version": "2023.1",
        "started_at": (now - dt.timedelta(minutes=8)).isoformat(),
        "submitted_at": now.isoformat(),
        "respondent": {"province": "44", "city": "4401", "age_group": "25-34"},
        "device_id": str(uuid.uuid4()),
        "answers": {"q1": 4, "q2": "b", "q3": ["a", "c"], "q4": "free text", "s1": 3, "s2": 4},
        "opinion": "希望加强个人信息保护，联系我 13812345678",
    }
    body.update(overrides)
    return body
