"""Reports render for the awkward campaigns real data brings: options chosen by nobody or by
everybody, a question nobody answered, a single hour of data, a single respondent; and the
comparison with the previous campaign in the same store."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.registry import Registry
from reports.build import build_report_from_store
from reports.model import ReportData
from reports.queries import Scope
from reports.render import Written, write_report
from schemas.campaign import CampaignDefinition
from schemas.events import CampaignDefined, SubmissionJudged
from storage.chdb_store import ChdbStore
from tests.reports.support import example_definition, judged_rows, registry_for

HOUR = dt.datetime(2026, 11, 20, 3, tzinfo=dt.UTC)


def _valid_rows(definition: CampaignDefinition, n: int) -> list[SubmissionJudged]:
    return [r for r in judged_rows(definition, registry_for(definition), n, seed=3)
            if r.status == "accepted"]


def _unanimous(row: SubmissionJudged, i: int) -> SubmissionJudged:
    """Every scale answer 4 or 5, everybody on a phone, q11 left blank by all, q10 only two of
    its options; all received within one hour."""
    answers = json.loads(row.answers_json)
    for q in ("q1", "q2", "q3", "q4", "q5", "q6", "q7"):
        answers[q] = 4 + (i + len(q)) % 2
    answers["q9"] = "手机"
    answers["q10"] = ["网络诈骗"] if i % 3 else ["网络诈骗", "账号被盗"]
    answers.pop("q11", None)
    return row.model_copy(update={
        "answers_json": json.dumps(answers, ensure_ascii=False, sort_keys=True),
        "received_at": HOUR + dt.timedelta(seconds=i % 3600),
    })


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbStore]:
    with ChdbStore(tmp_path_factory.mktemp("edge") / "chdb") as s:
        s.migrate()
        yield s


def _report(store: ChdbStore, definition: CampaignDefinition, out: Path,
            previous: CampaignDefinition | None = None) -> tuple[ReportData, Written]:
    registry = registry_for(definition)
    if previous is not None:
        registry.apply(CampaignDefined(campaign=previous.campaign, definition=previous,
                                       defined_at=dt.datetime(2025, 11, 1, tzinfo=dt.UTC)))
    state = registry.get(definition.campaign)
    prev_state = registry.get(previous.campaign) if previous is not None else None
    assert state is not None
    data = build_report_from_store(store, state, Scope(definition.campaign), previous=prev_state)
    return data, write_report(data, out)


def _renamed(definition: CampaignDefinition, campaign: str, **more: Any) -> CampaignDefinition:
    return definition.model_copy(update={"campaign": campaign, **more})


def test_unchosen_and_unanimous_options_an_empty_question_and_one_hour_render(
        store: ChdbStore, tmp_path: Path) -> None:
    """Catches: the negative error bar (`'xerr' must not contain negative values`), an empty
    hourly chart, a question nobody answered."""
    definition = _renamed(example_definition(), "edge-unanimous")
    rows = [_unanimous(r, i).model_copy(update={"campaign": definition.campaign})
            for i, r in enumerate(_valid_rows(example_definition(), 500))]
    store.insert_judged(rows)
    data, written = _report(store, definition, tmp_path)
    assert data.valid == len(rows) and written.pages >= 3
    q9 = next(q for q in data.questions if q.id == "q9")
    for o in q9.options:
        assert o.weighted is not None
        if o.option == "手机":
            assert o.weighted.value == 1.0 and o.weighted.high == 1.0 and o.share.high == 1.0
        else:
            assert o.weighted.value == 0.0 and o.weighted.low == 0.0 and o.share.low == 0.0
    q1 = next(q for q in data.questions if q.id == "q1")
    assert {o.option: o.share.count for o in q1.options}["1"] == 0
    q11 = next(q for q in data.questions if q.id == "q11")
    assert q11.answered == 0 and all(o.weighted is not None and not o.weighted.defined
                                     for o in q11.options)
    assert len(data.curve) == 1  # a single hour
    assert written.docx.stat().st_size > 0


def test_a_single_respondent_renders(store: ChdbStore, tmp_path: Path) -> None:
    definition = _renamed(example_definition(), "edge-one")
    row = _valid_rows(example_definition(), 20)[0].model_copy(
        update={"campaign": definition.campaign})
    store.insert_judged([row])
    data, written = _report(store, definition, tmp_path)
    assert data.valid == 1 and data.index is not None and data.index.n == 1
    assert data.index.low <= data.index.value <= data.index.high
    assert data.weights is not None and data.weights.deff == pytest.approx(1.0)
    assert "有效样本" in written.html.read_text(encoding="utf-8")


def test_year_over_year_shows_last_years_figures_and_whether_a_change_is_noise(
        store: ChdbStore, tmp_path: Path) -> None:
    """Last year: the same sheets, but q1 one point lower where it could be. q9 is unchanged
    (within noise); q1's mean fell (outside it)."""
    base = example_definition()
    before = _renamed(base, "yoy-2025")
    now = _renamed(base, "yoy-2026", previous_campaign="yoy-2025")
    rows = _valid_rows(base, 1500)
    store.insert_judged([r.model_copy(update={"campaign": now.campaign}) for r in rows])
    old = []
    for r in rows:
        answers = json.loads(r.answers_json)
        answers["q1"] = max(1, answers["q1"] - 1)
        old.append(r.model_copy(update={
            "campaign": before.campaign,
            "answers_json": json.dumps(answers, ensure_ascii=False, sort_keys=True)}))
    store.insert_judged(old)
    data, written = _report(store, now, tmp_path, previous=before)
    assert data.previous is not None and data.previous_campaign == "yoy-2025"
    assert data.previous.change.value > 0
    q9 = next(q for q in data.questions if q.id == "q9")
    assert all(o.change is not None and o.change.within_noise for o in q9.options)
    q1 = next(q for q in data.questions if q.id == "q1")
    assert q1.mean_change is not None and q1.mean_change.low > 0
    html = written.html.read_text(encoding="utf-8")
    assert "与上届（yoy-2025）比较" in html and "在抽样误差范围内" in html
    assert "超出抽样误差" in html


def test_registry_with_previous_campaign_loads() -> None:
    registry = Registry()
    definition = _renamed(example_definition(), "x", previous_campaign="y")
    registry.apply(CampaignDefined(campaign="x", definition=definition,
                                   defined_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)))
    state = registry.get("x")
    assert state is not None and state.definition.previous_campaign == "y"
