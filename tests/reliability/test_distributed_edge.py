"""At the edge of `survey-ingest collector` (Kafka): numbers JSON cannot hold are refused with a
clear 422, and phone and ID-card numbers never reach the raw topic."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from kafka import KafkaConsumer

from schemas.envelope import NON_FINITE_DETAIL
from tests.helpers import campaign_definition, sheet
from tests.integration.distributed_stack import Stack
from tests.reliability.support import end_offsets
from tests.reliability.test_embedded_edge import (
    ID_CARD,
    MARKER,
    NON_FINITE,
    PHONE,
    PHONE_SPACED,
    body_with,
    post_raw,
)

pytestmark = pytest.mark.integration
CAMPAIGN = "rel-edge"


@pytest.fixture(scope="module")
def stack(new_stack: Callable[..., Stack]) -> Stack:
    """Collector and API only: what is refused or masked is decided before the raw topic."""
    s = new_stack().start(worker=False)
    assert s.define(campaign_definition(CAMPAIGN)).status_code == 200
    s.post_until_taken(sheet(CAMPAIGN, opinion="探针"), 30)
    return s


def raw_records(stack: Stack) -> list[bytes]:
    """Every record of the stack's raw topic, read from the start up to its end (bounded)."""
    topic = f"{stack.prefix}.submissions.raw"
    ends = end_offsets(stack.kafka_bootstrap, topic)
    consumer = KafkaConsumer(bootstrap_servers=stack.kafka_bootstrap.split(","), group_id=None,
                             enable_auto_commit=False, request_timeout_ms=10_000)
    out: list[bytes] = []
    try:
        consumer.assign(list(ends))
        consumer.seek_to_beginning()
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            assert time.monotonic() < deadline, "raw topic not read to its end within 60 s"
            for records in consumer.poll(timeout_ms=500).values():
                out += [r.value for r in records]
    finally:
        consumer.close()
    return out


@pytest.mark.parametrize("literal", NON_FINITE)
@pytest.mark.parametrize("place", ["answer", "respondent_extra"])
def test_non_finite_number_is_refused_with_a_clear_detail(
    stack: Stack, literal: str, place: str
) -> None:
    _, content = body_with(literal, place)
    r = post_raw(stack.collector_url, content)
    assert r.status_code == 422, r.text
    payload = r.json()
    assert payload["detail"] == NON_FINITE_DETAIL
    assert [e["type"] for e in payload["errors"]] == ["non_finite_number"], payload


def test_personal_numbers_never_reach_the_raw_topic(stack: Stack) -> None:
    body = sheet(
        CAMPAIGN,
        answers={"q1": 4, "q2": "b", "q4": f"我的身份证 {ID_CARD} 被人冒用"},
        opinion=f"{MARKER} 请回电 {PHONE} 或 {PHONE_SPACED}",
        respondent={"province": "44", "city": "4401", "contact": f"tel:{PHONE}"},
    )
    for content in (json.dumps(body, ensure_ascii=True), json.dumps(body, ensure_ascii=False)):
        assert post_raw(stack.collector_url, content.encode()).status_code == 202
    records = raw_records(stack)
    ours = [r for r in records if body["submission_id"].encode() in r]
    assert len(ours) == 2, len(ours)
    # Both copies carry the same masked sheet: identical content, so one fingerprint.
    sheets = [json.loads(r)["body"] for r in ours]
    assert sheets[0] == sheets[1]
    assert MARKER in sheets[0]["opinion"] and "*" * len(PHONE) in sheets[0]["opinion"]
    assert sheets[0]["answers"]["q4"] == f"我的身份证 {'*' * len(ID_CARD)} 被人冒用"
    for record in records:
        for secret in (PHONE, PHONE_SPACED, ID_CARD, PHONE_SPACED.replace("-", "")):
            assert secret.encode() not in record, (secret, record[:300])
