"""Properties of judging and counting over random small campaigns and random streams of sheets.

Each example is a campaign-lite (a few work regions, provinces, units and links, perhaps reloaded
part-way with links revoked or added) and a stream of answer sheets in log order: conflicting
resends (same id, other content), devices used more than once, sheets outside the window or in a
test phase, unknown links and versions, invalid, missing, too fast or straight-lined answers.
Identical resends (client retries, redeliveries) are then inserted at random places.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.counting import Count, roll_up, tally
from core.judge import JudgeState
from core.ports import JudgeMemoryRow
from core.reasons import Reason
from core.registry import Registry
from schemas.events import SubmissionJudged, SubmissionReceived

UTC = dt.UTC
# 00:00 on 7 Sep in UTC, 08:00 in Shanghai: a day before the internal test. The stream runs
# to 24 Sep, past the end of collection, so every phase, gap and the closed window come up.
START = dt.datetime(2023, 9, 7, tzinfo=UTC)
SPAN_MINUTES = 17 * 24 * 60
DEFINED_AT = dt.datetime(2023, 9, 1, tzinfo=UTC)
OMIT = object()

PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

minutes = st.integers(0, SPAN_MINUTES)


@st.composite
def campaigns_lite(draw: st.DrawFn) -> dict[str, Any]:
    regions = [{"id": f"r{i}", "name": f"区{i}"} for i in range(draw(st.integers(1, 3)))]
    provinces = [
        {
            "id": f"p{i}",
            "name": f"省{i}",
            "work_region": draw(st.sampled_from(regions))["id"],
            "internet_users": draw(st.integers(0, 50_000)),
            "target_rate": draw(st.sampled_from([0.0, 0.005, 0.01])),
        }
        for i in range(draw(st.integers(1, 4)))
    ]
    units = [
        {
            "id": f"u{i}",
            "name": f"单位{i}",
            "province": draw(st.sampled_from(provinces))["id"],
            "planned_samples": draw(st.integers(0, 100)),
        }
        for i in range(draw(st.integers(1, 5)))
    ]
    links = [
        {"code": f"link{i:04d}", "unit": draw(st.sampled_from(units))["id"], "channel": "qr"}
        for i in range(draw(st.integers(1, 6)))
    ]
    revoked = draw(st.sets(st.sampled_from([lk["code"] for lk in links]), max_size=2))
    added = draw(st.none() | st.sampled_from(units).map(
        lambda u: {"code": "linkNEW0", "unit": u["id"], "channel": "poster"}))
    return {
        "work_regions": regions,
        "provinces": provinces,
        "units": units,
        "links": links,
        "revoked": sorted(revoked),
        "added": added,
        "reload_minute": draw(minutes),
    }


scale = st.integers(1, 5)
valid_value = {
    "single": st.sampled_from(["a", "b", "c"]),
    "multi": st.lists(st.sampled_from(["a", "b", "c", "d"]), unique=True, max_size=3),
    "text": st.text(max_size=12),
}
invalid_value = {
    "scale": st.sampled_from([0, 6, True, False, 4.5, "3", [2]]),
    "single": st.sampled_from(["z", ["a"], 1]),
    "multi": st.sampled_from([["a", "a"], ["a", "b", "c", "d"], ["e"], "a", [1]]),
    "text": st.sampled_from(["x" * 201, 7]),
}
QUESTIONS = {"q1": "scale", "q2": "single", "q3": "multi", "q4": "text",
             "s1": "scale", "s2": "scale", "s3": "scale", "s4": "scale"}


def _valid(kind: str) -> st.SearchStrategy[Any]:
    return scale if kind == "scale" else valid_value[kind]


@st.composite
def answer_sets(draw: st.DrawFn, clean: bool = False) -> dict[str, Any]:
    style = "valid" if clean else draw(st.sampled_from(["valid", "straight", "mixed", "mixed"]))
    if style == "straight":
        point = draw(scale)
        return {qid: (point if kind == "scale" else draw(_valid(kind)))
                for qid, kind in QUESTIONS.items()}
    answers: dict[str, Any] = {}
    for qid, kind in QUESTIONS.items():
        if style == "valid":
            answers[qid] = draw(_valid(kind))
        else:
            answers[qid] = draw(st.one_of(_valid(kind), invalid_value[kind],
                                          st.sampled_from([OMIT, None, ""])))
    if style == "mixed" and draw(st.booleans()):
        answers["q99"] = "unknown question"
    return {k: v for k, v in answers.items() if v is not OMIT}


@dataclass(frozen=True)
class Scenario:
    campaign: dict[str, Any]
    sheets: list[dict[str, Any]]  # in log order, no identical resends among them
    resends: list[tuple[int, int, int]]  # (sheet index, insert after sheet number, delay min)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    campaign = draw(campaigns_lite())
    codes = [lk["code"] for lk in campaign["links"]] + ["linkNEW0", "nolink00"]
    n = draw(st.integers(1, 20))
    times = sorted(draw(st.lists(minutes, min_size=n, max_size=n)))
    sheets: list[dict[str, Any]] = []
    for k in range(n):
        conflict_of = draw(st.none() | st.integers(0, k - 1)) if k else None
        # Half the sheets are flawless but for where and when they arrive, so that accepted
        # verdicts (and the devices they claim) are common; the rest may be wrong anywhere.
        clean = draw(st.booleans())
        sheets.append({
            # A conflicting resend takes an earlier id; its opinion alone makes its content new.
            "submission_id": sheets[conflict_of]["submission_id"] if conflict_of is not None
            else f"sub-{k:05d}",
            "opinion": f"opinion {k}",
            "minute": times[k],
            "link_code": draw(st.sampled_from(codes[:-2] if clean else codes)),
            # Few devices, so that the same one comes back often.
            "device_id": draw(st.sampled_from(["d0", "d0", "d1", "d2", None])),
            "questionnaire_version": "2023.1" if clean else draw(
                st.sampled_from(["2023.1", "2023.1", "2022.9"])),
            "duration": 600 if clean else draw(st.sampled_from([600, 90, 60, 59, 5, -10])),
            "answers": draw(answer_sets(clean)),
        })
    resends = [
        (i, draw(st.integers(i + 1, n)), draw(st.sampled_from([0, 0, 1, 30, 24 * 60, 3 * 24 * 60])))
        for i in draw(st.lists(st.integers(0, n - 1), max_size=8))
    ]
    return Scenario(campaign, sheets, resends)


@pytest.fixture(scope="session")
def kit(make_campaign, make_registry, make_submission, resend_of, judge_stream) -> SimpleNamespace:
    return SimpleNamespace(campaign=make_campaign, registry=make_registry,
                           submission=make_submission, resend_of=resend_of, judge=judge_stream)


def _registry(kit: SimpleNamespace, scenario: Scenario) -> Registry:
    c = scenario.campaign
    first = kit.campaign(work_regions=c["work_regions"], provinces=c["provinces"],
                         units=c["units"], links=c["links"])
    loads: list[Any] = [first]
    if c["revoked"] or c["added"]:
        links = [{**lk, "revoked": lk["code"] in c["revoked"]} for lk in c["links"]]
        if c["added"]:
            links.append(c["added"])
        at = START + dt.timedelta(minutes=c["reload_minute"])
        loads.append((kit.campaign(work_regions=c["work_regions"], provinces=c["provinces"],
                                   units=c["units"], links=links), at))
    return kit.registry(*loads)


def _sheet(kit: SimpleNamespace, spec: dict[str, Any]) -> SubmissionReceived:
    fields = {k: v for k, v in spec.items() if k not in {"minute", "device_id"}}
    return kit.submission(
        received_at=START + dt.timedelta(minutes=spec["minute"]),
        merge_answers=False,
        omit=[] if spec["device_id"] else ["device_id"],
        **({"device_id": spec["device_id"]} if spec["device_id"] else {}),
        **fields,
    )


def _streams(
    kit: SimpleNamespace, scenario: Scenario
) -> tuple[list[SubmissionReceived], list[SubmissionReceived], list[bool]]:
    """The sheets alone, and the sheets with identical resends inserted (and which those are)."""
    base = [_sheet(kit, spec) for spec in scenario.sheets]
    full: list[SubmissionReceived] = []
    inserted: list[bool] = []
    for position in range(len(base) + 1):
        if position:
            full.append(base[position - 1])
            inserted.append(False)
        for i, after, delay in scenario.resends:
            if after == position:
                # A retry arrives later than the sheet in the log just before it.
                at = base[position - 1].received_at + dt.timedelta(minutes=delay)
                full.append(kit.resend_of(base[i], received_at=at))
                inserted.append(True)
    return base, full, inserted


def _counted(judged: list[tuple[SubmissionJudged, bool]]) -> list[SubmissionJudged]:
    return [j for j, resend in judged if not resend]


@PROPERTY_SETTINGS
@given(scenario=scenarios())
def test_judging_the_same_stream_twice_gives_identical_verdicts(
    kit: SimpleNamespace, scenario: Scenario
) -> None:
    _, full, _ = _streams(kit, scenario)
    first = kit.judge(_registry(kit, scenario), full)
    second = kit.judge(_registry(kit, scenario), full)
    assert first == second


@PROPERTY_SETTINGS
@given(scenario=scenarios())
def test_identical_resends_anywhere_never_change_any_count(
    kit: SimpleNamespace, scenario: Scenario
) -> None:
    base, full, inserted = _streams(kit, scenario)
    without = kit.judge(_registry(kit, scenario), base)
    with_resends = kit.judge(_registry(kit, scenario), full)

    assert [resend for _, resend in without] == [False] * len(base)
    assert [resend for _, resend in with_resends] == inserted
    assert tally(_counted(with_resends)).units == tally(_counted(without)).units
    # Not just the counts: the verdicts on the sheets themselves are the same.
    assert _counted(with_resends) == [
        j.model_copy(update={"source_position": k.source_position})
        for j, k in zip(_counted(without), _counted(with_resends), strict=True)
    ]


@PROPERTY_SETTINGS
@given(scenario=scenarios())
def test_valid_counts_equal_the_number_of_accepted_verdicts(
    kit: SimpleNamespace, scenario: Scenario
) -> None:
    _, full, _ = _streams(kit, scenario)
    verdicts = _counted(kit.judge(_registry(kit, scenario), full))
    counts = tally(verdicts).for_campaign("2023")

    by_unit: dict[str, Counter[str]] = {}
    for v in verdicts:
        if v.unit:
            by_unit.setdefault(v.unit, Counter())[v.status] += 1
    assert {u: (c.valid, c.rejected, c.test) for u, c in counts.items()} == {
        u: (c["accepted"], c["rejected"], c["test"]) for u, c in by_unit.items()
    }
    assert sum(c.valid for c in counts.values()) == sum(v.status == "accepted" for v in verdicts)


@PROPERTY_SETTINGS
@given(scenario=scenarios())
def test_province_and_work_region_totals_equal_the_sum_of_their_units(
    kit: SimpleNamespace, scenario: Scenario
) -> None:
    _, full, _ = _streams(kit, scenario)
    registry = _registry(kit, scenario)
    counts = tally(_counted(kit.judge(registry, full))).for_campaign("2023")
    state = registry.get("2023")
    assert state is not None

    units = roll_up(state, counts, "unit")
    for level, parent in [
        ("province", lambda u: state.units[u].province),
        ("work_region", lambda u: state.provinces[state.units[u].province].work_region),
    ]:
        expected: dict[str, Count] = {}
        for unit_id, count in units.items():
            expected.setdefault(parent(unit_id), Count()).add(count)
        totals = roll_up(state, counts, level)  # type: ignore[arg-type]
        assert {k: v for k, v in totals.items() if v != Count()} == {
            k: v for k, v in expected.items() if v != Count()
        }
        assert set(totals) >= set(expected)


@PROPERTY_SETTINGS
@given(scenario=scenarios())
def test_at_most_one_accepted_verdict_per_device_and_per_submission_id(
    kit: SimpleNamespace, scenario: Scenario
) -> None:
    _, full, _ = _streams(kit, scenario)
    verdicts = _counted(kit.judge(_registry(kit, scenario), full))
    accepted = [v for v in verdicts if v.status == "accepted"]
    per_device = Counter((v.campaign, v.device_hash) for v in accepted if v.device_hash)
    per_id = Counter((v.campaign, v.submission_id) for v in accepted)
    assert max(per_device.values(), default=0) <= 1
    assert max(per_id.values(), default=0) <= 1


@PROPERTY_SETTINGS
@given(scenario=scenarios())
def test_status_and_reasons_agree(kit: SimpleNamespace, scenario: Scenario) -> None:
    _, full, _ = _streams(kit, scenario)
    registry = _registry(kit, scenario)
    state = registry.get("2023")
    assert state is not None
    counting_phases = {p.name for p in state.definition.phases if p.counts}
    known = {r.value for r in Reason}
    for v, _ in kit.judge(registry, full):
        assert set(v.reasons) <= known
        assert list(v.reasons) == sorted(set(v.reasons))
        assert ("outside_window" in v.reasons) == (v.phase == "")
        if v.status == "accepted":
            assert v.reasons == ()
            assert v.phase in counting_phases
            assert v.unit
        elif v.status == "test":
            assert v.phase and v.phase not in counting_phases
        else:
            assert v.reasons


@PROPERTY_SETTINGS
@given(scenario=scenarios(), cut=st.integers(0, 30))
def test_state_rebuilt_from_stored_verdicts_judges_the_rest_the_same(
    kit: SimpleNamespace, scenario: Scenario, cut: int
) -> None:
    """A restart folds the stored verdicts (resends are not stored) back into a fresh state."""
    _, full, _ = _streams(kit, scenario)
    cut = min(cut, len(full))
    registry = _registry(kit, scenario)
    uninterrupted = kit.judge(registry, full)

    before = kit.judge(registry, full[:cut])
    state = JudgeState.empty()
    for j in _counted(before):
        state.remember(JudgeMemoryRow(j.campaign, j.submission_id, j.fingerprint, j.first_of_id,
                                      j.device_hash, j.status))
    after = kit.judge(registry, full[cut:], state)

    def strip(judged: list[tuple[SubmissionJudged, bool]]) -> list[tuple[dict[str, Any], bool]]:
        return [(j.model_dump(exclude={"source_position"}), r) for j, r in judged]

    assert strip(before + after) == strip(uninterrupted)
