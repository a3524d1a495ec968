"""Realistic judged rows for the report tests: make_sheet bodies through the real judge."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

from core.judge import JudgeState, judge
from core.registry import Registry
from schemas.campaign import CampaignDefinition, Topic, load_campaign_file
from schemas.events import CampaignDefined, SubmissionJudged, SubmissionReceived
from simulation import EXAMPLE_CAMPAIGN
from simulation.generator import make_sheet

HASH_KEY = "report-tests"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
# From the second public-test day through nine collection days of the example campaign.
FIRST_DAY = dt.datetime(2026, 11, 19, tzinfo=SHANGHAI)
DAYS = 10
# Answers by hour of day (Shanghai): quiet at night, peaks at noon and in the evening.
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 4, 6, 8, 9, 9, 10, 12, 10, 9, 9, 9, 9, 10, 12, 13, 11, 6, 3)


def example_definition() -> CampaignDefinition:
    return load_campaign_file(EXAMPLE_CAMPAIGN)


TOPICS = [
    Topic(id="minors", name="未成年人专题", where={"respondent.age_group": ["under-18"]},
          questions=["q1", "q2", "q6", "q9"]),
    Topic(id="fraud", name="网络诈骗专题", where={"q10": ["网络诈骗"]}),
    Topic(id="phone", name="手机网民专题", where={"q9": ["手机"], "q1": ["4", "5"]}),
]


def with_topics(definition: CampaignDefinition) -> CampaignDefinition:
    """The example campaign with topics (validated as a campaign file would be)."""
    data = definition.model_dump(mode="json")
    data["topics"] = [t.model_dump(mode="json") for t in TOPICS]
    return CampaignDefinition.model_validate(data)


def registry_for(definition: CampaignDefinition) -> Registry:
    registry = Registry()
    registry.apply(CampaignDefined(
        campaign=definition.campaign, defined_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        definition=definition,
    ))
    return registry


def receive_times(rng: random.Random, n: int) -> list[dt.datetime]:
    hours = rng.choices(range(24), HOUR_WEIGHTS, k=n)
    days = [min(int(rng.triangular(0, DAYS, 3)), DAYS - 1) for _ in range(n)]
    times = [
        FIRST_DAY + dt.timedelta(days=d, hours=h, seconds=rng.randrange(3600))
        for d, h in zip(days, hours, strict=True)
    ]
    times.sort()
    return times


def judged_rows(
    definition: CampaignDefinition, registry: Registry, n: int, seed: int = 9
) -> Iterator[SubmissionJudged]:
    """n sheets judged in receive order; identical resends are dropped (the store would absorb
    them), so every row yielded is one stored verdict."""
    rng = random.Random(seed)
    state = JudgeState.empty()
    for i, at in enumerate(receive_times(rng, n)):
        body = make_sheet(definition, rng, at)
        received = SubmissionReceived(received_at=at.astimezone(dt.UTC), client="c", body=body)
        verdict, resend = judge(received, f"0:{i}", registry, state, HASH_KEY)
        if not resend:
            yield verdict
