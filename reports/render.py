"""Lays a report's figures out as report.html (self-contained) and report.pdf (charts and
tables, one matplotlib figure per page), both from the same charts."""

from __future__ import annotations

import base64
import html
import io
import textwrap
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from core.counting import LeaderboardRow
from reports import fonts
from reports.model import OptionShare, QuestionResult, ReportData
from reports.stats import SATISFACTION_FORMULA

PAGE: Final = (11.69, 8.27)  # A4 landscape, inches
TOP_UNITS: Final = 25
TABLE_ROWS: Final = 28  # rows of a table on one PDF page
VALID_COLOUR, REJECTED_COLOUR, TEST_COLOUR = "#2e7d32", "#c62828", "#9e9e9e"
ACCENT: Final = "#1565c0"

WILSON_NOTE: Final = (
    "比例的 95% 置信区间采用 Wilson 得分区间：(p + z²/2n ± z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n)，"
    "z = 1.96；n 为作答该题的有效样本数。多选题各选项比例之和可超过 100%。"
    " (95% confidence intervals for proportions: Wilson score interval.)"
)
SCOPE_NOTE: Final = (
    "统计口径：样本按其链接所属单位计入单位、省份和工作区；题目分布、满意度与人口特征仅基于有效样本；"
    "测试阶段样本单列，不计入有效或无效。一个无效样本可有多个原因，原因计数之和可大于无效样本数。"
)


@dataclass
class Chart:
    title: str
    figure: Figure


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _fmt(n: int) -> str:
    return f"{n:,}"


# -- charts -------------------------------------------------------------------------------------

def _figure(rows: int = 1, cols: int = 1, height: float = PAGE[1]) -> tuple[Figure, list[object]]:
    fig = Figure(figsize=(PAGE[0], height))
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def summary_chart(data: ReportData) -> Chart:
    fig = Figure(figsize=PAGE)
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.6]})
    labels = ["有效 valid", "无效 rejected", "测试 test"]
    values = [data.valid, data.rejected, data.test]
    bars = left.bar(labels, values, color=[VALID_COLOUR, REJECTED_COLOUR, TEST_COLOUR])
    left.bar_label(bars, labels=[_fmt(v) for v in values])
    left.set_title(f"样本量 sample size: {_fmt(data.total)}")
    if data.reasons:
        codes = [r for r, _ in data.reasons][::-1]
        counts = [n for _, n in data.reasons][::-1]
        hb = right.barh(codes, counts, color=REJECTED_COLOUR)
        right.bar_label(hb, labels=[_fmt(n) for n in counts], padding=2)
    right.set_title("无效原因 rejection reasons (一个样本可有多个原因)")
    fig.suptitle(f"{data.title}\n{data.scope_label}")
    fig.tight_layout()
    return Chart("样本量与有效性 · Sample size and validity", fig)


def curve_chart(data: ReportData) -> Chart:
    fig = Figure(figsize=PAGE)
    top, bottom = fig.subplots(2, 1)
    days = sorted({p.day for p in data.curve})
    per_day = {d: [0, 0, 0] for d in days}
    for p in data.curve:
        per_day[p.day][0] += p.valid
        per_day[p.day][1] += p.rejected
        per_day[p.day][2] += p.test
    x = range(len(days))
    v = [per_day[d][0] for d in days]
    r = [per_day[d][1] for d in days]
    t = [per_day[d][2] for d in days]
    top.bar(x, v, color=VALID_COLOUR, label="有效 valid")
    top.bar(x, r, bottom=v, color=REJECTED_COLOUR, label="无效 rejected")
    top.bar(x, t, bottom=[a + b for a, b in zip(v, r, strict=True)], color=TEST_COLOUR,
            label="测试 test")
    top.set_xticks(list(x), [d[5:] for d in days])
    top.set_title("每日采集量 by day (北京时间)")
    top.legend(loc="upper right")
    hourly = [p.valid for p in data.curve]
    cumulative = []
    running = 0
    for n in hourly:
        running += n
        cumulative.append(running)
    bottom.plot(range(len(hourly)), hourly, color=ACCENT, linewidth=0.9,
                label="每小时有效 valid/hour")
    bottom.set_ylabel("每小时 per hour")
    twin = bottom.twinx()
    twin.plot(range(len(cumulative)), cumulative, color=VALID_COLOUR, label="累计有效 cumulative")
    twin.set_ylabel("累计 cumulative")
    ticks = [i for i, p in enumerate(data.curve) if p.hour == 0 or i == 0]
    bottom.set_xticks(ticks, [data.curve[i].day[5:] for i in ticks])
    bottom.set_title("按小时的采集曲线 by hour")
    bottom.legend(loc="upper left")
    twin.legend(loc="center left")
    hours = [0] * 24
    for p in data.curve:
        hours[p.hour] += p.valid
    fig.tight_layout()
    return Chart("采集曲线 · Collection curve", fig)


def units_chart(data: ReportData) -> Chart:
    fig = Figure(figsize=PAGE)
    ax = fig.subplots()
    rows = data.units[:TOP_UNITS][::-1]
    bars = ax.barh([f"{r.rank}. {r.name}" for r in rows], [r.valid for r in rows], color=ACCENT)
    ax.bar_label(bars, labels=[f"{_fmt(r.valid)}（计划 {_pct(r.progress)}）" for r in rows],
                 padding=2, fontsize=8)
    ax.set_title(f"单位排名（按有效样本，前 {TOP_UNITS}）· unit ranking, progress against plan")
    ax.tick_params(axis="y", labelsize=8)
    ax.margins(x=0.25)
    fig.tight_layout()
    return Chart("单位排名 · Unit ranking", fig)


def provinces_chart(data: ReportData) -> Chart:
    fig = Figure(figsize=PAGE)
    ax = fig.subplots()
    rows = data.provinces[::-1]
    bars = ax.barh([f"{r.name}" for r in rows], [100 * r.progress for r in rows], color=ACCENT)
    ax.bar_label(bars, labels=[f"{_fmt(r.valid)} / {_fmt(r.target)}" for r in rows], padding=2,
                 fontsize=7)
    ax.set_xlabel("完成目标 % of target")
    ax.set_title("各省份完成目标情况 · provinces against target (有效样本 / 目标)")
    ax.tick_params(axis="y", labelsize=8)
    ax.margins(x=0.2)
    fig.tight_layout()
    return Chart("省份目标 · Provinces against target", fig)


def _shares_axis(ax: object, title: str, options: Sequence[OptionShare], note: str) -> None:
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    labels = [o.option for o in options][::-1]
    shares = [100 * o.share.share for o in options][::-1]
    low = [100 * (o.share.share - o.share.low) for o in options][::-1]
    high = [100 * (o.share.high - o.share.share) for o in options][::-1]
    bars = ax.barh(labels, shares, xerr=[low, high], color=ACCENT, ecolor="black", capsize=3)
    ax.bar_label(bars, labels=[
        f"{_pct(o.share.share)} [{_pct(o.share.low)}, {_pct(o.share.high)}]" for o in options
    ][::-1], padding=6, fontsize=8)
    ax.set_xlim(0, max([*shares, 1.0]) * 1.35)
    ax.set_title("\n".join(textwrap.wrap(title, 60)), fontsize=10)
    ax.set_xlabel(note, fontsize=8)


def question_charts(data: ReportData) -> Iterator[Chart]:
    for start in range(0, len(data.questions), 2):
        pair = data.questions[start:start + 2]
        fig = Figure(figsize=PAGE)
        axes = fig.subplots(len(pair), 1, squeeze=False)
        for q, row in zip(pair, axes, strict=True):
            _shares_axis(row[0], f"{q.id}. {q.label}", q.options, _question_note(q))
        fig.suptitle("题目答案分布（误差线为 95% Wilson 置信区间）· answer distributions, 95% CI",
                     fontsize=10)
        fig.tight_layout()
        yield Chart(f"题目 {', '.join(q.id for q in pair)}", fig)


def _question_note(q: QuestionResult) -> str:
    note = f"% of {_fmt(q.answered)} 个作答的有效样本"
    if q.skipped:
        note += f"（未作答 {_fmt(q.skipped)}）"
    if q.mean is not None:
        note += f"；均值 mean {q.mean:.2f}"
    return note


def satisfaction_chart(data: ReportData) -> Chart:
    fig = Figure(figsize=PAGE)
    ax = fig.subplots()
    levels = {"work_region": "工作区", "province": "省份", "unit": "单位"}
    rows = sorted(data.satisfaction, key=lambda r: (r.level != "work_region", -r.index))[::-1]
    colours = [VALID_COLOUR if r.level == "work_region" else ACCENT for r in rows]
    bars = ax.barh([f"{levels.get(r.level, r.level)}·{r.name}" for r in rows],
                   [r.index for r in rows], color=colours)
    ax.bar_label(bars, labels=[f"{r.index:.1f}" for r in rows], padding=2, fontsize=7)
    ax.set_xlim(0, 100)
    ax.tick_params(axis="y", labelsize=7)
    overall = "—" if data.overall_index is None else f"{data.overall_index:.1f}"
    ax.set_title(f"满意度指数 satisfaction index（总体 overall {overall}）")
    ax.set_xlabel("\n".join(textwrap.wrap(SATISFACTION_FORMULA, 110)), fontsize=8)
    fig.tight_layout()
    return Chart("满意度指数 · Satisfaction index", fig)


def demographics_chart(data: ReportData) -> Chart:
    fig = Figure(figsize=PAGE)
    axes = fig.subplots(1, len(data.demographics), squeeze=False)[0]
    for ax, demo in zip(axes, data.demographics, strict=True):
        rows = demo.rows[::-1]
        ax.barh([r.option for r in rows], [100 * r.share.share for r in rows], color=ACCENT)
        ax.set_title("\n".join(textwrap.wrap(demo.title, 18)), fontsize=10)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_xlabel("% 有效样本 of valid samples", fontsize=8)
    fig.suptitle("受访者构成 · respondents")
    fig.tight_layout()
    return Chart("受访者构成 · Demographics", fig)


def themes_chart(data: ReportData) -> Chart:
    fig = Figure(figsize=PAGE)
    ax = fig.subplots()
    rows = data.themes[:25][::-1]
    bars = ax.barh([w for w, _ in rows], [n for _, n in rows], color=ACCENT)
    ax.bar_label(bars, labels=[_fmt(n) for _, n in rows], padding=2, fontsize=8)
    ax.set_title(f"意见建议高频词（jieba 分词，去停用词；{_fmt(data.themes_from)} 条意见，"
                 f"共 {_fmt(data.opinions_total)} 条）· frequent themes")
    fig.tight_layout()
    return Chart("意见主题 · Themes", fig)


def all_charts(data: ReportData) -> list[Chart]:
    charts = [summary_chart(data)]
    if data.curve:
        charts.append(curve_chart(data))
    charts += [units_chart(data), provinces_chart(data)]
    charts += list(question_charts(data))
    if data.satisfaction:
        charts.append(satisfaction_chart(data))
    charts.append(demographics_chart(data))
    if data.themes:
        charts.append(themes_chart(data))
    return charts


# -- tables -------------------------------------------------------------------------------------

@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


def _of_total(n: int, total: int) -> str:
    return f"{_fmt(n)}（{_pct(n / total) if total else '—'}）"


def _ranked(rows: Sequence[LeaderboardRow]) -> list[list[str]]:
    return [[str(r.rank), r.name, _fmt(r.valid), _fmt(r.rejected), _fmt(r.target),
             _pct(r.progress)] for r in rows]


def tables(data: ReportData) -> list[Table]:
    out = [Table("概况 · Summary", ["项目 item", "数值 value"], [
        ["报告范围 scope", data.scope_label],
        ["样本量 sample size (judged sheets)", _fmt(data.total)],
        ["有效样本 valid", _of_total(data.valid, data.total)],
        ["无效样本 rejected", _of_total(data.rejected, data.total)],
        ["测试阶段样本 test phase (not counted)", _fmt(data.test)],
        ["超过 50,000 有效样本 eligible for a report", "是 yes" if data.eligible else "否 no"],
        ["满意度指数 satisfaction index",
         "—" if data.overall_index is None else f"{data.overall_index:.1f}"],
        ["意见建议条数 opinions (valid samples)", _fmt(data.opinions_total)],
        ["生成时间 generated at (UTC)", data.generated_at.strftime("%Y-%m-%d %H:%M")],
    ], SCOPE_NOTE)]
    out.append(Table("无效原因 · Rejection reasons",
                     ["原因 reason", "样本数 count", "占无效 % of rejected"],
                     [[r, _fmt(n), _pct(n / data.rejected) if data.rejected else "—"]
                      for r, n in data.reasons]))
    out.append(Table("单位排名 · Units", ["名次", "单位 unit", "有效 valid", "无效 rejected",
                                           "计划 plan", "完成 progress"],
                     _ranked(data.units)))
    for title, ranked in (("省份 · Provinces", data.provinces),
                          ("工作区 · Work regions", data.work_regions)):
        out.append(Table(title, ["名次", "名称 name", "有效 valid", "无效 rejected",
                                  "目标 target", "完成 progress"], _ranked(ranked)))
    for q in data.questions:
        out.append(Table(f"{q.id}. {q.label}", ["选项 option", "人数 count", "比例 share",
                                                 "95% CI (Wilson)"],
                         [[o.option, _fmt(o.share.count), _pct(o.share.share),
                           f"{_pct(o.share.low)} – {_pct(o.share.high)}"] for o in q.options],
                         _question_note(q)))
    out.append(Table("满意度指数 · Satisfaction index", ["层级 level", "名称 name", "指数 index",
                                                       "量表作答数 item answers"],
                     [[r.level, r.name, f"{r.index:.1f}", _fmt(r.answers)]
                      for r in data.satisfaction], SATISFACTION_FORMULA))
    for demo in data.demographics:
        rows = [[r.option, _fmt(r.share.count), _pct(r.share.share),
                 f"{_pct(r.share.low)} – {_pct(r.share.high)}"] for r in demo.rows]
        if demo.others:
            rows.append(["其他 others", _fmt(demo.others), "", ""])
        out.append(Table(demo.title, ["组别 group", "人数 count", "比例 share", "95% CI"], rows))
    out.append(Table("高频主题词 · Frequent themes", ["词 word", "提及条数 opinions"],
                     [[w, _fmt(n)] for w, n in data.themes]))
    return out


# -- HTML ---------------------------------------------------------------------------------------

_CSS: Final = """
body{font-family:"Noto Sans CJK SC","Noto Sans SC","Microsoft YaHei",sans-serif;margin:2em;
color:#222;max-width:1200px}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:2px 8px}
td.n{text-align:right}img{max-width:100%}.note{color:#555;font-size:.9em}
blockquote{margin:.3em 0;padding:.2em .8em;border-left:3px solid #1565c0;background:#f5f8ff}
"""


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return base64.b64encode(buf.getvalue()).decode()


def _html_table(t: Table) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in t.header)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="n">{e(c)}</td>' if c[:1].isdigit() and i else f"<td>{e(c)}</td>"
            for i, c in enumerate(row)) + "</tr>"
        for row in t.rows
    )
    note = f'<p class="note">{e(t.note)}</p>' if t.note else ""
    return f"<h2>{e(t.title)}</h2><table><tr>{head}</tr>{body}</table>{note}"


def render_html(data: ReportData, charts: Sequence[Chart]) -> str:
    e = html.escape
    parts = [
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{e(data.title)}'
        f"</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(data.title)}</h1><p>{e(data.scope_label)}</p>",
        f'<p class="note">{e(SCOPE_NOTE)}</p><p class="note">{e(WILSON_NOTE)}</p>',
        f'<p class="note">{e(SATISFACTION_FORMULA)}</p>',
    ]
    for chart in charts:
        parts.append(f'<h2>{e(chart.title)}</h2><img alt="{e(chart.title)}" '
                     f'src="data:image/png;base64,{_png(chart.figure)}">')
    parts += [_html_table(t) for t in tables(data)]
    parts.append("<h2>意见建议摘录 · Sample of opinions（个人号码已遮蔽 numbers masked）</h2>")
    parts += [f"<blockquote>{e(o)}</blockquote>" for o in data.opinion_sample]
    parts.append("</body></html>")
    return "\n".join(parts)


# -- PDF ----------------------------------------------------------------------------------------

def _text_page(title: str, lines: Sequence[str]) -> Figure:
    fig = Figure(figsize=PAGE)
    fig.text(0.05, 0.94, title, fontsize=16, weight="bold", va="top")
    y = 0.87
    for line in lines:
        for wrapped in textwrap.wrap(line, 75) or [""]:
            if y < 0.04:  # the page is full: what does not fit is left to the HTML
                return fig
            fig.text(0.05, y, wrapped, fontsize=10.5, va="top")
            y -= 0.032
        y -= 0.012
    return fig


def _table_pages(t: Table) -> Iterator[Figure]:
    chunks = [t.rows[i:i + TABLE_ROWS] for i in range(0, len(t.rows), TABLE_ROWS)] or [[]]
    for n, chunk in enumerate(chunks):
        fig = Figure(figsize=PAGE)
        ax = fig.subplots()
        ax.axis("off")
        suffix = f"（续 {n + 1}/{len(chunks)}）" if len(chunks) > 1 else ""
        ax.set_title(t.title + suffix, fontsize=12, loc="left")
        if chunk:
            table = ax.table(cellText=chunk, colLabels=t.header, loc="upper center",
                             cellLoc="left")
            table.auto_set_font_size(False)
            table.set_fontsize(8.5)
            table.scale(1, 1.25)
        if t.note:
            fig.text(0.05, 0.03, "\n".join(textwrap.wrap(t.note, 110)), fontsize=8)
        yield fig


def render_pdf(data: ReportData, charts: Sequence[Chart], path: Path) -> int:
    """Writes the PDF; returns its page count."""
    pages = 0
    with PdfPages(path, metadata={"Title": data.title, "Subject": data.scope_label}) as pdf:
        def add(fig: Figure) -> None:
            nonlocal pages
            pdf.savefig(fig)
            pages += 1

        first: list[Callable[[], Figure]] = [lambda: _text_page(data.title, [
            data.scope_label,
            f"样本量 {_fmt(data.total)}：有效 {_fmt(data.valid)}，无效 {_fmt(data.rejected)}，"
            f"测试阶段 {_fmt(data.test)}。",
            SCOPE_NOTE, WILSON_NOTE, SATISFACTION_FORMULA,
        ])]
        for make in first:
            add(make())
        for chart in charts:
            add(chart.figure)
        for t in tables(data):
            for fig in _table_pages(t):
                add(fig)
        add(_text_page("意见建议摘录 · Sample of opinions（个人号码已遮蔽）",
                       [f"· {o}" for o in data.opinion_sample]))
    return pages


@dataclass(frozen=True)
class Written:
    html: Path
    pdf: Path
    pages: int
    charts: int


def write_report(data: ReportData, out_dir: Path, *, require_cjk_font: bool = False) -> Written:
    fonts.configure(required=require_cjk_font)
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = all_charts(data)
    html_path = out_dir / "report.html"
    pdf_path = out_dir / "report.pdf"
    html_path.write_text(render_html(data, charts), encoding="utf-8")
    pages = render_pdf(data, charts, pdf_path)
    return Written(html_path, pdf_path, pages, len(charts))
