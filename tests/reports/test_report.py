"""The report over 55,000+ generated sheets: its figures against an independent count of the
same verdicts, its PDF pages, the HTML, the CLI and the eligibility endpoint."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from reports.fonts import find_cjk_font
from reports.stats import wilson_interval
from tests.reports.conftest import Built, unavailable

ROOT = Path(__file__).resolve().parents[2]


def _valid(built: Built) -> list[Any]:
    return [r for r in built.rows if r.status == "accepted"]


def _wilson(k: int, n: int) -> tuple[float, float]:
    """The Wilson interval written out again, from its textbook form."""
    z = 1.959963984540054
    p = k / n
    denominator = 1 + z * z / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return ((centre - spread) / denominator, (centre + spread) / denominator)


def test_report_is_built_from_over_50000_sheets(built: Built) -> None:
    assert len(built.rows) >= 50_000  # timings are printed; speed is benchmarks/' business
    assert built.written.pages >= 3


def test_sample_size_and_validity_match_an_independent_count(built: Built) -> None:
    # Sheets, not attempts (CONTRACT §6): a conflicting resend (first_of_id False) is no sheet.
    sheets = [r for r in built.rows if r.first_of_id]
    statuses = Counter(r.status for r in sheets)
    data = built.data
    assert data.total == len(sheets) < len(built.rows)
    assert (data.valid, data.rejected, data.test) == (
        statuses["accepted"], statuses["rejected"], statuses["test"])
    reasons = Counter(code for r in sheets if r.status == "rejected" for code in r.reasons)
    assert dict(data.reasons) == dict(reasons)
    assert {"too_fast", "straight_lining", "duplicate_respondent"} <= set(reasons)
    assert sum(p.valid for p in data.curve) == data.valid
    assert sum(p.rejected + p.test for p in data.curve) == data.rejected + data.test


def test_scale_distribution_and_its_wilson_interval_match(built: Built) -> None:
    valid = _valid(built)
    answers = [json.loads(r.answers_json) for r in valid]
    q1 = next(q for q in built.data.questions if q.id == "q1")
    expected = Counter(a["q1"] for a in answers if "q1" in a)
    assert q1.answered == sum(expected.values()) == len(valid)  # q1 is required
    for option in q1.options:
        k = expected[int(option.option)]
        assert option.share.count == k
        low, high = _wilson(k, q1.answered)
        assert option.share.low == pytest.approx(low, abs=1e-12)
        assert option.share.high == pytest.approx(high, abs=1e-12)
        assert option.share.low <= option.share.share <= option.share.high
    mean = sum(a["q1"] for a in answers) / len(answers)
    assert q1.mean == pytest.approx(mean)


def test_multi_choice_and_optional_questions_match(built: Built) -> None:
    answers = [json.loads(r.answers_json) for r in _valid(built)]
    q11 = next(q for q in built.data.questions if q.id == "q11")  # optional multi
    ticked = [a["q11"] for a in answers if a.get("q11")]
    assert q11.answered == len(ticked)
    assert q11.skipped == len(answers) - len(ticked)
    counts = Counter(o for choice in ticked for o in set(choice))
    assert {o.option: o.share.count for o in q11.options} == {
        o.option: counts[o.option] for o in q11.options}


def test_units_provinces_and_demographics_match(built: Built) -> None:
    valid = _valid(built)
    by_unit = Counter(r.unit for r in valid)
    top = built.data.units[0]
    assert top.valid == max(by_unit.values()) and top.rank == 1
    assert {u.id: u.valid for u in built.data.units if u.valid} == dict(by_unit)
    by_province = Counter(r.province for r in valid)
    assert {p.id: p.valid for p in built.data.provinces if p.valid} == dict(by_province)
    ages = Counter(r.age_group for r in valid)
    age_rows = {row.option: row.share.count for row in built.data.demographics[0].rows}
    assert age_rows == {(k or "未填写"): v for k, v in ages.items()}


def test_satisfaction_index_follows_its_stated_formula(built: Built) -> None:
    scales = [q for q in built.definition.questionnaire.questions if q.type == "scale"]
    total = answers = 0.0
    for r in _valid(built):
        if r.work_region != "south":
            continue
        a = json.loads(r.answers_json)
        for q in scales:
            if q.id in a:
                total += (a[q.id] - q.min) / (q.max - q.min)
                answers += 1
    south = next(s for s in built.data.satisfaction
                 if s.level == "work_region" and s.id == "south")
    assert south.answers == answers
    assert south.index == pytest.approx(100 * total / answers)


def test_opinions_are_sampled_masked_and_themed(built: Built) -> None:
    data = built.data
    assert data.opinions_total == sum(1 for r in _valid(built) if r.opinion)
    assert len(data.opinion_sample) == 20
    for text in data.opinion_sample:
        assert not re.search(r"\d{7,}", text)
    words = [w for w, _ in data.themes]
    assert words and "希望" not in words and "建议" not in words  # stop words gone
    assert all(len(w) >= 2 for w in words)


def test_html_is_self_contained_with_every_chart(built: Built) -> None:
    html = built.written.html.read_text(encoding="utf-8")
    assert html.count('<div class="chart"') == built.written.charts > 0
    assert html.count("<svg") >= built.written.charts
    assert "src=\"http" not in html and "<link" not in html
    assert "Wilson" in html and "满意度指数 SI" in html
    assert f"{built.data.valid:,}" in html


def test_pdf_pages_exist_and_are_not_blank(built: Built, tmp_path: Path) -> None:
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        unavailable("pdftoppm (poppler-utils) is not installed")
    from PIL import Image

    subprocess.run([pdftoppm, "-r", "30", "-png", str(built.written.pdf), str(tmp_path / "p")],
                   check=True, timeout=120)
    pages = sorted(tmp_path.glob("p-*.png"))
    assert len(pages) == built.written.pages
    for page in pages[:3]:
        with Image.open(page) as image:
            grey = image.convert("L")
            ink = sum(grey.histogram()[:200]) / (grey.width * grey.height)
        assert ink > 0.005, page.name


def test_a_cjk_font_is_installed_for_the_charts() -> None:
    if find_cjk_font() is None:
        unavailable("no CJK font (fonts-noto-cjk) visible to matplotlib")


def test_cli_writes_a_province_report_from_the_embedded_store(built: Built) -> None:
    out = built.data_dir / "out-44"
    done = subprocess.run(
        [sys.executable, "-m", "commands.cli", "report", "--campaign",
         built.definition.campaign, "--province", "44", "--out", str(out),
         "--data-dir", str(built.data_dir)],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    valid = sum(1 for r in _valid(built) if r.province == "44")
    assert summary["valid"] == valid
    assert summary["rejected"] == sum(
        1 for r in built.rows if r.province == "44" and r.status == "rejected" and r.first_of_id)
    for name in ("report.html", "report.pdf", "report.docx"):
        assert (out / name).stat().st_size > 0, name


def test_cli_refuses_an_unknown_province_with_one_line(built: Built, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "commands.cli", "report", "--campaign",
         built.definition.campaign, "--province", "99", "--out", str(tmp_path),
         "--data-dir", str(built.data_dir)],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )
    assert done.returncode == 2
    assert "no province '99'" in done.stderr and "Traceback" not in done.stderr


def test_wilson_interval_known_values() -> None:
    assert wilson_interval(0, 0) == (0.0, 0.0)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(5, 10)
    assert (low, high) == pytest.approx((0.2366, 0.7634), abs=1e-4)


def _store(built: Built, database: str = "survey") -> Any:
    from storage.chdb_store import ChdbStore

    return ChdbStore(built.data_dir / "chdb", database)


def test_eligible_endpoint_lists_regions_over_the_threshold(built: Built) -> None:
    from fastapi.testclient import TestClient

    from api.app import build_api
    from api.services import Services

    valid = _valid(built)
    with _store(built) as store:
        services = Services(registry=built.registry, store=store, admin_token="adm",
                            define_campaign=_never, ready=lambda: True)
        client = TestClient(build_api(services), headers={"authorization": "Bearer adm"})
        body = client.get(f"/v1/campaigns/{built.definition.campaign}/reports/eligible").json()
        assert client.get("/v1/campaigns/nope/reports/eligible").status_code == 404
    assert body["threshold"] == 50_000
    for level, key in (("provinces", "province"), ("work_regions", "work_region"),
                       ("units", "unit")):
        counts = Counter(getattr(r, key) for r in valid)
        assert [(e["id"], e["valid"]) for e in body[level]] == sorted(
            ((k, v) for k, v in counts.items() if v > 50_000), key=lambda kv: (-kv[1], kv[0]))


def test_eligibility_ranks_regions_over_a_lower_threshold(built: Built) -> None:
    from reports.eligibility import eligible_regions

    state = built.registry.get(built.definition.campaign)
    assert state is not None
    counts = Counter(r.province for r in _valid(built))
    with _store(built) as store:
        counted = store.unit_counts(built.definition.campaign)
    found = eligible_regions(state, counted, "province", 2_000)
    expected = sorted(((k, v) for k, v in counts.items() if v > 2_000),
                      key=lambda kv: (-kv[1], kv[0]))
    assert [(r.id, r.valid) for r in found] == expected and expected


def test_opinions_are_masked_again_even_if_stored_unmasked(built: Built) -> None:
    from reports.build import build_report_from_store
    from reports.queries import Scope

    phone_row = next(r for r in _valid(built)).model_copy(update={
        "submission_id": "mask-1", "opinion": "电话13812345678，身份证110101199003071234",
    })
    state = built.registry.get(built.definition.campaign)
    assert state is not None
    with _store(built, "masking") as store:
        store.migrate()
        store.insert_judged([phone_row])
        data = build_report_from_store(store, state, Scope(built.definition.campaign))
        store._execute("DROP DATABASE masking")
    assert data.valid == 1
    assert data.opinion_sample == ["电话***********，身份证******************"]


async def _never(definition: Any) -> None:
    raise AssertionError("not used")


def test_cli_refuses_an_unknown_topic_with_one_line(built: Built, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "commands.cli", "report", "--campaign",
         built.definition.campaign, "--topic", "nope", "--out", str(tmp_path),
         "--data-dir", str(built.data_dir)],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )
    assert done.returncode == 2
    assert "no topic 'nope'" in done.stderr and "Traceback" not in done.stderr
