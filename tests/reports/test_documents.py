"""The published documents over the 55,000-sheet store: page 1's summary in the PDF's text, the
DOCX's tables against the HTML's, a weighted share recomputed with numpy, and topics."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from typing import Any

import numpy as np
import pytest

from reports.build import build_report_from_store, topic_scope
from reports.document import fmt
from reports.eligibility import eligible_topics
from reports.queries import Scope, valid_count_sql
from storage.chdb_store import ChdbStore
from tests.reports.conftest import Built, unavailable


def _valid(built: Built) -> list[Any]:
    return [r for r in built.rows if r.status == "accepted"]


def test_page_one_of_the_pdf_holds_the_summary_figures(built: Built) -> None:
    """Catches: a summary that slid off page 1, or a PDF whose text is not text (no CJK font,
    tables drawn as pictures)."""
    if shutil.which("pdftotext") is None:
        unavailable("pdftotext (poppler-utils) is not installed")
    page1 = subprocess.run(["pdftotext", "-f", "1", "-l", "1", "-layout",
                            str(built.written.pdf), "-"], capture_output=True, text=True,
                           check=True, timeout=60).stdout
    data = built.data
    assert data.index is not None and data.index_unweighted is not None
    assert "摘要" in page1 and "满意度指数（加权）" in page1
    assert fmt(data.valid) in page1
    assert f"{data.index.value:.1f}（95% 区间 {data.index.low:.1f}–{data.index.high:.1f}）" in page1
    assert f"{data.index_unweighted.value:.1f}" in page1
    assert data.weights is not None and f"{data.weights.deff:.2f}" in page1
    assert "无效率" in page1  # response quality
    page2 = subprocess.run(["pdftotext", "-f", "2", "-l", "2", str(built.written.pdf), "-"],
                           capture_output=True, text=True, check=True, timeout=60).stdout
    assert "目录" in page2 and "附录 方法说明" in page2


def test_docx_holds_the_same_tables_as_the_html(built: Built) -> None:
    from docx import Document
    from lxml import html as lhtml

    tree = lhtml.fromstring(built.written.html.read_bytes())
    html_tables = [[[c.text_content() for c in tr.xpath("./th|./td")] for tr in t.xpath(".//tr")]
                   for t in tree.xpath("//table")]
    docx = Document(str(built.written.docx))
    docx_tables = [[[c.text for c in row.cells] for row in t.rows] for t in docx.tables]
    assert len(docx_tables) == len(html_tables) == built.written.tables
    assert docx_tables == html_tables
    text = "\n".join(p.text for p in docx.paragraphs)
    assert "附录 方法说明" in text and "合理化建议" in text


def test_one_weighted_share_recomputed_with_numpy_matches(built: Built) -> None:
    """Post-stratification by the respondent's province, written out again: a sheet's weight is
    its province's share of internet users over its share of the sample."""
    valid = _valid(built)
    users = {p.id: p.internet_users for p in built.definition.provinces}
    prov = np.array([r.respondent_province for r in valid])
    keep = np.isin(prov, list(users))
    answers = [json.loads(r.answers_json) for r in valid]
    phone = np.array([a.get("q9") == "手机" for a in answers])
    answered = np.array(["q9" in a for a in answers])
    present = sorted(set(prov[keep]))
    n_by = Counter(prov[keep])
    total_users = sum(users[p] for p in present)
    w = np.array([users[p] / total_users * keep.sum() / n_by[p] if k else 0.0
                  for p, k in zip(prov, keep, strict=True)])
    expected = float((w * phone).sum() / (w * answered).sum())
    q9 = next(q for q in built.data.questions if q.id == "q9")
    option = next(o for o in q9.options if o.option == "手机")
    assert option.weighted is not None
    assert option.weighted.value == pytest.approx(expected, rel=1e-9)
    assert option.share.share == pytest.approx(phone.sum() / answered.sum(), rel=1e-12)
    assert option.weighted.value != pytest.approx(option.share.share, rel=1e-6)  # weights act


def _matches(row: Any, where: dict[str, list[str]]) -> bool:
    answers = json.loads(row.answers_json)
    fields = {"respondent.age_group": row.age_group, "respondent.province":
              row.respondent_province, "respondent.city": row.respondent_city}
    for key, values in where.items():
        if key in fields:
            if fields[key] not in values:
                return False
            continue
        got = answers.get(key)
        got = got if isinstance(got, list) else [got]
        if not {str(g) for g in got if g is not None} & set(values):
            return False
    return True


def test_topics_past_the_threshold_are_eligible_and_counted_as_filtered(built: Built) -> None:
    """Catches: a topic filter in SQL that differs from the rule (multi-choice containment, a
    scale value given as text, respondent fields)."""
    state = built.registry.get(built.definition.campaign)
    assert state is not None
    campaign = built.definition.campaign
    expected = {t.id: sum(1 for r in _valid(built) if _matches(r, t.where))
                for t in built.definition.topics}
    assert all(n > 1_000 for n in expected.values()), expected
    with ChdbStore(built.data_dir / "chdb") as store:
        def count(topic_id: str) -> int:
            scope = topic_scope(state, campaign, topic_id)
            return int(store.aggregate(valid_count_sql(scope))[0][0])

        found = eligible_topics(state, count, threshold=1_000)
        assert {r.id: r.valid for r in found} == expected
        data = build_report_from_store(store, state, topic_scope(state, campaign, "minors"))
    assert data.kind == "topic" and data.valid == expected["minors"]
    assert [q.id for q in data.questions] == ["q1", "q2", "q6", "q9"]
    assert data.nation is not None  # compared with the nation
    assert data.index is not None and data.nation.other.n == built.data.valid


def test_store_aggregate_refuses_anything_but_a_select(built: Built) -> None:
    with ChdbStore(built.data_dir / "chdb") as store, pytest.raises(ValueError):
        store.aggregate("DROP TABLE submissions")
    assert Scope("x").kind == "national"
