"""The anomaly detectors' building blocks: network prefixes, sketches, bounded engine state."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random

import httpx

from core.anomaly import AnomalyConfig, AnomalyEngine
from core.anomaly.config import TextConfig
from core.anomaly.sketches import (
    CountMin,
    MinHasher,
    SpaceSaving,
    normalise_text,
    shingles,
    similarity,
)
from core.privacy import keyed_hash, network_prefix
from ingest.collector import Collector
from schemas.events import SubmissionJudged, SubmissionReceived, decode_event
from tests.helpers import sheet

T0 = dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.UTC)


def test_network_prefix_is_the_slash_24_or_slash_48() -> None:
    assert network_prefix("203.0.113.77") == "203.0.113.0/24"
    assert network_prefix("2001:db8:85a3:1:2:8a2e:370:7334") == "2001:db8:85a3::/48"
    assert network_prefix("::ffff:203.0.113.9") == "203.0.113.0/24"
    assert network_prefix("") == network_prefix("testclient") == network_prefix("1.2.3.x") == ""


def test_the_collector_appends_a_keyed_hash_of_the_network_never_the_address() -> None:
    appended: list[bytes] = []

    class ListLog:
        async def append(self, key: bytes, value: bytes) -> object:
            appended.append(value)
            return None

        def healthy(self) -> bool:
            return True

    collector = Collector(ListLog(), lambda: {"c1"}, hash_key="k")

    async def post() -> int:
        transport = httpx.ASGITransport(app=collector, client=("198.51.100.23", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            r = await client.post("/v1/submissions", json=sheet("c1"))
            return r.status_code

    assert asyncio.run(post()) == 202
    event = decode_event(appended[0])
    assert isinstance(event, SubmissionReceived)
    assert event.network == keyed_hash("k", "198.51.100.0/24")
    assert b"198.51.100" not in appended[0]
    # Records from before the field existed still decode.
    old = json.loads(appended[0])
    del old["network"]
    assert decode_event(json.dumps(old)).network == ""  # type: ignore[union-attr]


def test_minhash_finds_edited_copies_and_separates_other_texts() -> None:
    hasher = MinHasher()
    original = "强烈建议主办方把本单位评为优秀组织单位，我们单位网络安全宣传工作做得非常扎实到位。"
    edited = "强烈建议主办方把本单位评为优秀组织单位!!我们单位网络安全宣传工作做得很扎实到位啊"
    other = "骚扰电话和垃圾短信还是太多，希望运营商加强拦截，老人特别容易上当受骗。"

    def sig(text: str) -> tuple[int, ...]:
        return hasher.signature(shingles(normalise_text(text)))

    assert similarity(sig(original), sig(edited)) >= 0.6
    assert similarity(sig(original), sig(other)) <= 0.2
    assert sig(original) == MinHasher().signature(shingles(normalise_text(original)))
    assert set(hasher.band_keys(sig(original))) & set(hasher.band_keys(sig(edited)))


def test_count_min_never_undercounts_and_space_saving_keeps_heavy_hitters() -> None:
    rng = random.Random(1)
    sketch, exact = CountMin(width=256), dict[int, int]()
    heavy = SpaceSaving(capacity=8)
    for _ in range(20_000):
        key = rng.getrandbits(64) if rng.random() < 0.7 else 42
        sketch.add(key)
        exact[key] = exact.get(key, 0) + 1
        heavy.add(str(key), "s")
    assert all(sketch.estimate(k) >= n for k, n in exact.items())
    assert heavy.counters["42"].guaranteed <= exact[42] <= heavy.counters["42"].count
    assert len(heavy.counters) == 8


def _judged(i: int, **fields: object) -> SubmissionJudged:
    values: dict[str, object] = {
        "submission_id": f"s{i}", "campaign": "c", "fingerprint": f"f{i}",
        "source_position": f"0:{i}", "received_at": T0 + dt.timedelta(seconds=i),
        "status": "accepted", "rules_version": "r", "link_code": f"L{i % 7}", "unit": "u",
        "device_hash": f"{i:032x}", "network": f"{i % 50:032x}", "duration_seconds": 300.0,
        "answers_json": json.dumps({"q1": i % 5, "q2": "a"}), **fields,
    }
    return SubmissionJudged.model_validate(values)


def test_engine_state_is_bounded_and_test_sheets_and_conflicting_resends_are_skipped() -> None:
    engine = AnomalyEngine(AnomalyConfig(max_links=3, text=TextConfig(max_clusters=10)))
    for i in range(200):
        engine.observe(_judged(i, opinion=f"完全不同的第{i}条意见，内容各不相同{i * 7919}号"))
    assert engine.links_tracked == 3
    assert len(engine.campaigns["c"].links) == 3
    assert len(engine.campaigns["c"].text.clusters) == 10
    assert len(engine.campaigns["c"].text.buckets) <= 10 * engine.minhash.bands
    before = engine.campaigns["c"].n
    assert engine.observe(_judged(500, status="test")) == []
    assert engine.observe(_judged(501, first_of_id=False)) == []
    assert engine.campaigns["c"].n == before


def test_a_failing_findings_store_costs_the_findings_never_the_verdicts() -> None:
    from collections.abc import Collection, Sequence

    from schemas.events import AnomalyKind, FindingRaised
    from stream_processors.findings import FINDINGS_FAILURES, FindingsStep

    class RefusingStore:
        def insert_findings(self, rows: Sequence[FindingRaised]) -> int:
            raise ConnectionError("store down")

        def findings(
            self, campaign: str, *, anomaly: AnomalyKind | None = None, unit: str | None = None,
            link: str | None = None, limit: int = 500,
            within_units: Collection[str] | None = None,
        ) -> list[FindingRaised]:
            return []

        def finding_totals(self) -> dict[tuple[str, str], int]:
            return {}

    step = FindingsStep(RefusingStore(), AnomalyEngine())
    ring = [_judged(i, opinion="强烈建议主办方把本单位评为优秀组织单位，宣传工作做得非常扎实到位。")
            for i in range(12)]
    before = FINDINGS_FAILURES._value.get()
    assert step.process(ring) == []  # logged and counted; the caller carries on
    assert FINDINGS_FAILURES._value.get() == before + 1


def test_a_stop_ends_the_detectors_rebuild_between_chunks() -> None:
    """Catches `FindingsStep.rebuild` ignoring its `stopping` callable: at a million stored
    verdicts the rebuild is a minute of CPU, and `serve` told to stop during its catch-up then
    outlived its SIGTERM (the 10,000-screen benchmark's server was SIGKILLed)."""
    from collections.abc import Iterator

    from stream_processors.findings import FindingsStep

    class NoFindings:
        def insert_findings(self, rows: object) -> int:
            return 0

    read = 0

    def verdicts() -> Iterator[SubmissionJudged]:
        nonlocal read
        for i in range(1_000):
            read += 1
            yield _judged(i)

    step = FindingsStep(NoFindings(), AnomalyEngine())  # type: ignore[arg-type]
    stops = iter([False, True])
    assert step.rebuild(verdicts(), chunk=100, stopping=lambda: next(stops)) == 200
    assert read == 200  # nothing read past the chunk the stop came after
    assert FindingsStep(NoFindings(), AnomalyEngine()).rebuild(  # type: ignore[arg-type]
        verdicts(), chunk=100) == 1_000
