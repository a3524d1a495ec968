"""One truth for every number (CONTRACT §6): every read path agrees with the standing status.

Random campaigns of sheets (accepted, every rejection kind, test phase, unknown links, identical
resends, conflicting resends) and review decisions (by id and by link window, some reversing
earlier ones, applied in any order). For every unit, link, province, work region and day the
leaderboards, pacing, the frozen ranking, /counts (each source it can use), answer
distributions' `accepted` (both sources), the report queries and the reference recount agree
with a Python model built from core.review's rule, and a store filled again in another order
("replay") holds count tables with the same hashes. On chDB and, fewer examples, on the
ClickHouse server.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import freeze
from core.counting import LEVELS, Count, leaderboard, roll_up
from core.pacing import pacing
from core.ports import RegionFilter
from core.reasons import Reason
from core.registry import Registry
from core.review import overrides_for, standing, target_of
from reports import queries as report_queries
from schemas.campaign import CampaignDefinition, SingleQuestion
from schemas.events import CampaignDefined, ReviewDecided, SubmissionJudged
from storage import SqlStore, open_store
from storage import queries as store_queries
from tests.storage.conftest import ADAPTERS, _database_url
from tests.storage.support import drop

TZ = ZoneInfo("Asia/Shanghai")
START = dt.datetime(2023, 9, 13, 0, 0, tzinfo=TZ)
REGIONS = {"south": ["44", "45"], "north": ["11"]}
UNITS = {"u44a": "44", "u44b": "44", "u45": "45", "u11": "11"}
LINKS = {"L44a1": "u44a", "L44a2": "u44a", "L44b": "u44b", "L45": "u45", "L11": "u11"}
UNKNOWN_LINK = "Lzzz"
REJECTIONS = [r.value for r in Reason if r is not Reason.DUPLICATE_SUBMISSION]
Q2 = SingleQuestion(id="q2", type="single", options=["a", "b", "c"])
_serial = itertools.count()


def definition(campaign: str) -> CampaignDefinition:
    return CampaignDefinition.model_validate({
        "campaign": campaign,
        "phases": [
            {"name": "internal_test", "start": "2023-09-08", "end": "2023-09-09",
             "counts": False},
            {"name": "collection", "start": "2023-09-13", "end": "2023-09-22", "counts": True},
        ],
        "work_regions": [{"id": w, "name": w} for w in REGIONS],
        "provinces": [
            {"id": p, "name": p, "work_region": w, "internet_users": 1000, "target_rate": 0.01}
            for w, ps in REGIONS.items() for p in ps
        ],
        "units": [{"id": u, "name": u, "kind": "initiating", "province": p,
                   "planned_samples": 10} for u, p in UNITS.items()],
        "links": [{"code": code, "unit": u, "channel": "wechat" if i % 2 else "qq"}
                  for i, (code, u) in enumerate(LINKS.items())],
        "questionnaire": {"version": "v1", "questions": [
            {"id": "q1", "type": "scale", "min": 1, "max": 5, "required": True},
            {"id": "q2", "type": "single", "options": ["a", "b", "c"], "required": True},
        ]},
    })


def region_of(province: str) -> str:
    return next(w for w, ps in REGIONS.items() if province in ps)


@dataclass(frozen=True)
class Sheet:
    kind: str  # accepted, rejected, test, unknown
    reason: str
    link: str
    minute: int  # receive time: minutes after START
    q1: int
    q2: str
    resends: int  # identical resends (absorbed by the store)
    conflicts: int  # resends with other content


@dataclass(frozen=True)
class Decision:
    invalid: bool
    by_ids: bool
    picks: tuple[int, ...]  # sheet indexes (by id)
    link: str
    window: tuple[int, int]  # minutes after START


sheets_st = st.builds(
    Sheet,
    kind=st.sampled_from(["accepted", "accepted", "rejected", "test", "unknown"]),
    reason=st.sampled_from(REJECTIONS),
    link=st.sampled_from(sorted(LINKS)),
    minute=st.integers(0, 3 * 24 * 60),  # three days: day boundaries in Shanghai time
    q1=st.integers(1, 5),
    q2=st.sampled_from(["a", "b", "c"]),
    resends=st.integers(0, 1),
    conflicts=st.integers(0, 2),
)
decisions_st = st.builds(
    Decision,
    invalid=st.booleans(),
    by_ids=st.booleans(),
    picks=st.lists(st.integers(0, 200), min_size=1, max_size=6).map(tuple),
    link=st.sampled_from(sorted(LINKS)),
    window=st.tuples(st.integers(0, 3 * 24 * 60), st.integers(1, 2 * 24 * 60)),
)


def verdicts(campaign: str, sheets: list[Sheet]) -> tuple[list[SubmissionJudged], list[Any]]:
    """(first verdicts, every verdict to store: firsts, identical resends, conflicts)."""
    firsts: list[SubmissionJudged] = []
    stored: list[SubmissionJudged] = []
    for i, s in enumerate(sheets):
        at = (START + dt.timedelta(minutes=s.minute)).astimezone(dt.UTC)
        unit = "" if s.kind == "unknown" else LINKS[s.link]
        province = UNITS.get(unit, "")
        status = {"accepted": "accepted", "rejected": "rejected", "test": "test",
                  "unknown": "rejected"}[s.kind]
        reasons: tuple[str, ...] = {
            "accepted": (), "test": (), "rejected": (s.reason,), "unknown": ("unknown_link",),
        }[s.kind]
        if s.kind == "test":
            at = dt.datetime(2023, 9, 8, 3, tzinfo=dt.UTC) + dt.timedelta(minutes=s.minute % 600)
        first = SubmissionJudged(
            submission_id=f"{campaign}-{i:04d}", campaign=campaign, fingerprint=f"fp{i}",
            source_position=f"0:{i}", received_at=at, status=status, reasons=reasons,
            rules_version="r1", phase="internal_test" if s.kind == "test" else "collection",
            link_code=UNKNOWN_LINK if s.kind == "unknown" else s.link, unit=unit,
            province=province, work_region=region_of(province) if province else "",
            channel="c" + s.link[-1], questionnaire_version="v1", respondent_province="44",
            respondent_city="4401", age_group="25-34", duration_seconds=300.0,
            device_hash=f"dev{i}" if status == "accepted" else "",
            answers_json=json.dumps({"q1": s.q1, "q2": s.q2}),
        )
        firsts.append(first)
        stored.append(first)
        stored.extend([first] * s.resends)
        stored.extend(
            first.model_copy(update={
                "fingerprint": f"fp{i}-conflict{k}", "first_of_id": False, "status": "rejected",
                "reasons": ("duplicate_submission",), "source_position": f"1:{i}:{k}",
                "received_at": at + dt.timedelta(minutes=k + 1), "answers_json": '{"q1": 1}',
                "device_hash": "",
            })
            for k in range(s.conflicts)
        )
    return firsts, stored


def review_events(campaign: str, decisions: list[Decision], n: int) -> list[ReviewDecided]:
    out = []
    for k, d in enumerate(decisions):
        target: dict[str, Any]
        if d.by_ids:
            target = {"submission_ids": tuple(sorted({f"{campaign}-{p % n:04d}"
                                                       for p in d.picks}))}
        else:
            start = START + dt.timedelta(minutes=d.window[0])
            target = {"link_code": d.link, "window_start": start,
                      "window_end": start + dt.timedelta(minutes=d.window[1])}
        out.append(ReviewDecided(
            decision_id=f"d{k}", campaign=campaign, action="invalid" if d.invalid else "valid",
            reason="padding", reviewer="r",
            decided_at=dt.datetime(2023, 9, 23, tzinfo=dt.UTC) + dt.timedelta(minutes=k),
            **target,
        ))
    return out


def model(firsts: list[SubmissionJudged], decisions: list[ReviewDecided]) -> dict[str, str]:
    """The standing status of every sheet, by core.review's rule."""
    latest = standing(overrides_for(decisions, [target_of(f) for f in firsts]))
    return {
        f.submission_id: (latest[(f.campaign, f.submission_id)].status
                          if (f.campaign, f.submission_id) in latest else f.status)
        for f in firsts
    }


def expected_by(firsts: list[SubmissionJudged], status: dict[str, str],
                key: Any) -> dict[Any, Count]:
    out: dict[Any, Count] = {}
    for f in firsts:
        c = out.setdefault(key(f), Count())
        s = status[f.submission_id]
        if s == "accepted":
            c.valid += 1
        elif s == "rejected":
            c.rejected += 1
        else:
            c.test += 1
    return out


def _day(f: SubmissionJudged) -> str:
    return f.received_at.astimezone(TZ).date().isoformat()


KEYS = {
    "unit": lambda f: f.unit, "province": lambda f: f.province,
    "work_region": lambda f: f.work_region, "link": lambda f: f.link_code, "day": _day,
}
SOURCES = {
    "unit": ("link_hour_counts", "unit_counts", "submissions"),
    "link": ("link_hour_counts", "submissions"),
    "day": ("link_hour_counts", "unit_counts", "submissions"),
    "province": ("unit_counts", "submissions"),
    "work_region": ("unit_counts", "submissions"),
}


def store_into(store: SqlStore, stored: list[SubmissionJudged],
               decisions: list[ReviewDecided], rng: random.Random) -> None:
    """Verdicts in random batches, decisions in random order, some applied before the
    verdicts they cover are stored (then whoever stores them applies the decisions)."""
    from core.review import DecisionIndex

    rows = list(stored)
    rng.shuffle(rows)
    # A conflicting resend is never stored before its first verdict in the live pipeline;
    # keep that order, the rest is free.
    rows.sort(key=lambda r: r.first_of_id, reverse=True)
    early = decisions[: rng.randint(0, len(decisions))]
    for d in early:
        store.apply_review(d)
    while rows:
        cut = rng.randint(1, len(rows))
        batch, rows = rows[:cut], rows[cut:]
        store.insert_judged(batch)
        if early:
            store.apply_reviews_to(batch, DecisionIndex(early))
    late = decisions[len(early):]
    rng.shuffle(late)
    for d in late:
        store.apply_review(d)


@pytest.fixture(scope="module", params=ADAPTERS)
def stores(request: pytest.FixtureRequest, chdb_dir: Path) -> Iterator[tuple[str, SqlStore,
                                                                               SqlStore]]:
    """(adapter, a live store, a store the same verdicts are replayed into)."""
    urls = [_database_url(request.param, request, chdb_dir) for _ in range(2)]
    with open_store(urls[0]) as live, open_store(urls[1]) as again:
        live.migrate()
        again.migrate()
        yield request.param, live, again
        drop(live)
        drop(again)


def check_world(live: SqlStore, again: SqlStore, sheets: list[Sheet],
                plan: list[Decision], seed: int) -> None:
    campaign = f"c{next(_serial)}"
    registry = Registry()
    registry.apply(CampaignDefined(campaign=campaign, defined_at=START,
                                   definition=definition(campaign)))
    state = registry.campaigns[campaign]
    firsts, stored = verdicts(campaign, sheets)
    decisions = review_events(campaign, plan, len(sheets))
    status = model(firsts, decisions)
    store_into(live, stored, decisions, random.Random(seed))

    # Per unit: leaderboards (every level), pacing, the frozen ranking.
    per_unit = {u: c for u, c in expected_by(firsts, status, KEYS["unit"]).items() if u}
    counts = live.unit_counts(campaign)
    assert {u: c for u, c in counts.items() if c != Count()} == per_unit
    assert live.exact_unit_counts(campaign) == counts
    for level in LEVELS:
        board = {r.id: (r.valid, r.rejected) for r in leaderboard(state, counts, level)}
        want = {k: (c.valid, c.rejected) for k, c in roll_up(state, per_unit, level).items()}
        assert board == want
        _, rows = pacing(state, counts, level, dt.datetime(2023, 9, 20, tzinfo=dt.UTC))
        assert {r.id: r.valid for r in rows} == {k: v for k, (v, _) in want.items()}
    frozen = freeze.final_content(state, counts, ["r1"])
    assert frozen["totals"]["valid"] == sum(c.valid for c in per_unit.values())

    # /counts: every scope, every source that can answer it; conflicts listed apart.
    for name, sources in SOURCES.items():
        want_by = expected_by(firsts, status, KEYS[name])
        for source in sources:
            rows = live._breakdown(store_queries.breakdown_query(
                campaign, [name], RegionFilter(), source=source))
            got = {r.group[0][1]: Count(r.valid, r.rejected, r.test) for r in rows}
            assert {k: c for k, c in got.items() if c != Count()} == {
                k: c for k, c in want_by.items() if c != Count()}, (name, source)
    # Filtered by a scope: its conditions reach every side of a source (the corrections too).
    for name in ("province", "work_region", "unit"):
        for value in {KEYS[name](f) for f in firsts} - {""}:
            want_by = expected_by([f for f in firsts if KEYS[name](f) == value], status, _day)
            for source in ("unit_counts", "submissions"):
                rows = live._breakdown(store_queries.breakdown_query(
                    campaign, ["day"], RegionFilter(**{name: value}), source=source))
                got = {r.group[0][1]: Count(r.valid, r.rejected, r.test) for r in rows}
                assert {k: c for k, c in got.items() if c != Count()} == {
                    k: c for k, c in want_by.items() if c != Count()}, (name, value, source)
    (total,) = live.breakdown(campaign, [], RegionFilter())
    assert total.conflicts == sum(s.conflicts for s in sheets)
    by_reason = {r.group[0][1]: r for r in live.breakdown(campaign, ["reason"], RegionFilter())}
    assert (by_reason["duplicate_submission"].conflicts if "duplicate_submission" in by_reason
            else 0) == total.conflicts

    # Distributions: `accepted` per scope from answer_counts, and from the sheets (a phase
    # filter sends it there); the whole distribution the same either way.
    for name in ("unit", "province", "work_region", "link"):
        want_by = expected_by(firsts, status, KEYS[name])
        for value, c in want_by.items():
            if not value:
                continue
            field = "link" if name == "link" else name
            rollup = live.answer_distribution(campaign, Q2, RegionFilter(**{field: value}))
            sheets_path = live.answer_distribution(
                campaign, Q2, RegionFilter(**{field: value, "phase": "collection"}))
            assert rollup.accepted == c.valid, (name, value)
            assert rollup == sheets_path
            q2 = Counter(json.loads(f.answers_json)["q2"] for f in firsts
                         if status[f.submission_id] == "accepted" and KEYS[name](f) == value)
            assert dict(rollup.counts) == {o: q2.get(o, 0) for o in Q2.options}

    # Reports read counts through the same definition.
    with live._lock:
        report_rows = live._execute(report_queries.unit_counts_sql(report_queries.Scope(campaign)))
    assert {str(u): Count(int(v), int(r), int(t)) for u, v, r, t in report_rows} == per_unit

    # Exports: one row per sheet, its standing status; accepted rows per unit = valid.
    cut = live.clock() + 1
    exported = [row for batch in live.iter_sheets(campaign, RegionFilter(), "all", cut,
                                                  batch_rows=7)
                for row in batch.to_pylist()]
    assert {r["submission_id"]: r["status"] for r in exported} == status
    assert len(exported) == len(firsts)
    accepted = Counter(r["unit"] for batch in live.iter_sheets(
        campaign, RegionFilter(), "accepted", cut) for r in batch.to_pylist())
    assert {u: n for u, n in accepted.items() if u} == {
        u: c.valid for u, c in per_unit.items() if c.valid}

    # Nothing to reconcile; a replay (the same verdicts, another order) is identical.
    assert live.count_differences(campaign) == []
    store_into(again, stored, decisions, random.Random(seed + 1))
    assert again.count_hashes(campaign) == live.count_hashes(campaign)
    assert again.unit_counts(campaign) == counts


def test_every_read_path_agrees_on_every_scope(stores: tuple[str, SqlStore, SqlStore]) -> None:
    adapter, live, again = stores

    @settings(max_examples=8 if adapter == "chdb" else 2, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(sheets=st.lists(sheets_st, min_size=1, max_size=40),
           plan=st.lists(decisions_st, max_size=5), seed=st.integers(0, 2**16))
    def check(sheets: list[Sheet], plan: list[Decision], seed: int) -> None:
        check_world(live, again, sheets, plan, seed)

    check()
