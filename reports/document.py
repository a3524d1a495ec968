"""A report as a document: the blocks (headings, paragraphs, tables, charts) in reading order,
summary first, method appendix last. The HTML/PDF and the DOCX are both laid out from these
blocks, so they say the same thing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from reports.estimates import Difference, Estimate
from reports.model import QuestionResult, ReportData
from reports.stats import SATISFACTION_FORMULA


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    anchor: str = ""


@dataclass(frozen=True)
class Para:
    text: str
    style: str = ""  # "" | note | lead


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""
    note: str = ""


@dataclass(frozen=True)
class Chart:
    kind: str  # shares | curve | regions
    title: str
    payload: object


@dataclass(frozen=True)
class PageBreak:
    pass


Block = Heading | Para | Table | Chart | PageBreak


@dataclass
class Document:
    title: str
    subtitle: str
    blocks: list[Block] = field(default_factory=list)

    @property
    def sections(self) -> list[Heading]:
        return [b for b in self.blocks if isinstance(b, Heading) and b.level == 2 and b.anchor]


def fmt(n: float) -> str:
    return f"{n:,.0f}"


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def est_index(e: Estimate | None) -> str:
    if e is None or not e.defined:
        return "—"
    return f"{e.value:.1f}（95% 区间 {e.low:.1f}–{e.high:.1f}）"


def est_share(e: Estimate | None) -> str:
    if e is None or not e.defined:
        return "—"
    return f"{pct(e.value)} [{pct(e.low)}, {pct(e.high)}]"


def diff_text(d: Difference | None, *, percent: bool = False) -> str:
    if d is None:
        return "—"
    k = 100.0 if percent else 1.0
    unit = " 个百分点" if percent else ""
    noise = "，在抽样误差范围内" if d.within_noise else "，超出抽样误差"
    return f"{k * d.value:+.1f}{unit}（{k * d.low:+.1f} 至 {k * d.high:+.1f}{noise}）"


def summary_rows(data: ReportData) -> list[list[str]]:
    w = data.weights
    rows = [
        ["报告范围", data.scope_label],
        ["有效样本（accepted sheets, n）", fmt(data.valid)],
        ["满意度指数（加权）", est_index(data.index)],
        ["满意度指数（未加权）", est_index(data.index_unweighted)],
    ]
    if w is not None:
        rows.append(["设计效应 / 有效样本量（Kish）", f"{w.deff:.2f} / {fmt(w.n_eff)}"])
    if data.nation is not None:
        rows.append([f"与全国比较（全国 {data.nation.other.value:.1f}）",
                     diff_text(data.nation.change)])
    if data.previous is not None:
        rows.append([f"与上届（{data.previous_campaign}）比较"
                     f"（上届 {data.previous.other.value:.1f}）", diff_text(data.previous.change)])
    elif data.previous_campaign:
        rows.append([f"与上届（{data.previous_campaign}）比较", "上届无可比数据"])
    return rows


def quality_rows(data: ReportData) -> list[list[str]]:
    rate = data.rejected / (data.valid + data.rejected) if data.valid + data.rejected else 0.0
    top = "；".join(f"{r} {fmt(n)}" for r, n in data.reasons[:3]) or "—"
    rows = [
        ["判定答卷（有效 + 无效 + 测试）", fmt(data.total)],
        ["无效率（无效 ÷ 有效与无效）", pct(rate)],
        ["主要无效原因", top],
        ["测试阶段答卷（不计入）", fmt(data.test)],
    ]
    if data.duration_median is not None:
        rows.append(["有效答卷完成时长中位数", f"{data.duration_median:.0f} 秒"])
    rows.append(["附意见建议的有效答卷", fmt(data.opinions_total)])
    return rows


def gap_rows(data: ReportData) -> list[list[str]]:
    return [[g.dimension, f"{g.high} {g.high_index.value:.1f}", f"{g.low} {g.low_index.value:.1f}",
             diff_text(g.gap)] for g in data.gaps[:3]]


def question_table(q: QuestionResult) -> Table:
    has_prev = any(o.previous is not None for o in q.options)
    header = ["选项", "人数", "未加权比例", "加权比例 [95% 区间]"]
    if has_prev:
        header += ["上届（加权）", "变化 [95% 区间]"]
    rows = []
    for o in q.options:
        row = [o.option, fmt(o.share.count), pct(o.share.share), est_share(o.weighted)]
        if has_prev:
            row += [est_share(o.previous), diff_text(o.change, percent=True)]
        rows.append(row)
    note = f"作答的有效样本 {fmt(q.answered)}，未作答 {fmt(q.skipped)}。"
    if q.type == "multi":
        note += "多选题各选项比例之和可超过 100%。"
    if q.weighted_mean is not None:
        note += (f"均值：加权 {q.weighted_mean.value:.2f}"
                 f"（{q.weighted_mean.low:.2f}–{q.weighted_mean.high:.2f}），"
                 f"未加权 {q.mean:.2f}。" if q.mean is not None else "")
        if q.previous_mean is not None:
            note += f"上届加权均值 {q.previous_mean.value:.2f}，变化 {diff_text(q.mean_change)}。"
    return Table(header, rows, f"{q.id}. {q.label}", note)


def method_blocks(data: ReportData) -> list[Block]:
    w = data.weights
    out: list[Block] = [PageBreak(), Heading(2, "附录 方法说明", "method")]
    if w is not None:
        used = "、".join(name for _, name, _, _ in w.provinces_used) or "—"
        left = "、".join(name for _, name in w.provinces_left_out) or "无"
        out.append(Para(
            "加权：权重单元为受访者本人所在省份（respondent.province），按各省网民数（internet_users）"
            "事后分层；活动文件声明的边际分布一并迭代比例拟合（raking，svy 库，对汇总后的权重单元"
            "以单元样本数为基础权重计算，同一单元内每份答卷权重相同）。范围内没有有效答卷的省份不参与，"
            f"其余省份的网民数重新归一。参与加权的省份（{len(w.provinces_used)}）：{used}。"
            f"未参与（无有效答卷）：{left}。受访省份不在活动省份中的答卷"
            f" {fmt(w.unweighted_sheets)} 份，权重为 0。"
            + (f"本区域报告只代表区域内各省网民：通过本区域链接作答、本人在区域外省份的受访者"
               f" {fmt(w.outside_sheets)} 份合为一个单元，保持其样本比例。"
               if w.scope_provinces is not None else ""), "note"))
        out.append(Para(
            f"设计效应（Kish，1 + 权重变异系数²）{w.deff:.2f}，有效样本量 {fmt(w.n_eff)}"
            f"（有效样本 {fmt(w.n)}）。", "note"))
        for m in w.margins:
            out.append(Table(["类别", "目标比例", "加权后", "加权前"],
                             [[c, pct(t), pct(g), pct(u)] for c, t, g, u in m.rows],
                             f"边际 {m.key}",
                             "声明中没有样本的类别不参与并重新归一；未填写或未声明的值保持其样本比例。"))
    out.append(Para(
        "区间：加权比例与均值为比率估计 R = Σw·y / Σw·x，方差用泰勒线性化 "
        "v = Σ w²(y − R·x)² / (Σw·x)²（有放回近似，把权重视为固定，忽略事后分层带来的方差缩减，"
        "区间偏宽）。比例的 95% 区间为有效样本量 p(1−p)/v 下的 Wilson 区间（p 为 0 或 1 时用 Kish "
        "有效样本量），始终满足 0 ≤ 下限 ≤ 比例 ≤ 上限 ≤ 1；均值与指数为 R ± 1.96·√v。未加权比例用 "
        "Wilson 区间。差异（与上届、群体之间）的区间按两个独立估计计算：±1.96·√(v₁ + v₂)，"
        "区间包含 0 即在抽样误差范围内。", "note"))
    out.append(Para(SATISFACTION_FORMULA + " 加权指数中每份答卷按其权重计入。", "note"))
    out += [Para(line, "note") for line in data.basis]
    return out


def build_document(data: ReportData) -> Document:
    doc = Document(data.title, data.scope_label)
    b = doc.blocks
    b.append(Heading(1, data.title))
    b.append(Para(f"{data.scope_label} · 生成于 {data.generated_at:%Y-%m-%d %H:%M} UTC", "lead"))
    b.append(Heading(2, "摘要"))
    b.append(Table(["指标", "数值"], summary_rows(data), "主要结果"))
    if data.gaps:
        b.append(Table(["维度", "最高", "最低", "差异 [95% 区间]"], gap_rows(data),
                       "群体间最大差异（加权满意度指数）"))
    b.append(Table(["答卷质量", "数值"], quality_rows(data), "答卷质量"))
    b.append(Para("加权估计代表各省网民总体；未加权数字仅描述样本。方法见附录。", "note"))
    b.append(PageBreak())
    b.append(Heading(2, "一、样本与答卷质量", "sample"))
    if data.curve:
        b.append(Chart("curve", "每日有效答卷", data.curve))
    b.append(Table(["原因", "样本数", "占无效"],
                   [[r, fmt(n), pct(n / data.rejected) if data.rejected else "—"]
                    for r, n in data.reasons], "无效原因", "一份无效答卷可有多个原因。"))
    groups: list[str] = []
    for q in data.questions:
        if q.group not in groups:
            groups.append(q.group)
    numerals = "二三四五六七八九十"
    for i, group in enumerate(groups):
        b.append(Heading(2, f"{numerals[i % 9]}、{group or '其他题目'}", f"group{i}"))
        for q in (q for q in data.questions if q.group == group):
            b.append(Heading(3, f"{q.id}. {q.label}"))
            if q.options:
                b.append(Chart("shares", f"{q.id} 加权比例与 95% 区间", q))
            b.append(question_table(q))
    n = len(groups)
    b.append(Heading(2, f"{numerals[(n) % 9]}、满意度指数分布", "regions"))
    levels = {"work_region": "工作区", "province": "省份", "unit": "单位"}
    if data.satisfaction:
        b.append(Chart("regions", "加权满意度指数", data.satisfaction))
    b.append(Table(["层级", "名称", "加权指数 [95% 区间]", "未加权", "量表作答数"],
                   [[levels.get(r.level, r.level), r.name, est_index(r.weighted),
                     f"{r.index:.1f}", fmt(r.answers)] for r in data.satisfaction],
                   "各地区满意度指数"))
    if data.gaps:
        b.append(Table(["维度", "最高", "最低", "差异 [95% 区间]"],
                       [[g.dimension, f"{g.high} {g.high_index.value:.1f}",
                         f"{g.low} {g.low_index.value:.1f}", diff_text(g.gap)]
                        for g in data.gaps], "群体差异"))
    b.append(Heading(2, f"{numerals[(n + 1) % 9]}、受访者构成与单位", "respondents"))
    for demo in data.demographics:
        rows = [[r.option, fmt(r.share.count), pct(r.share.share)] for r in demo.rows]
        if demo.others:
            rows.append(["其他", fmt(demo.others), ""])
        b.append(Table(["组别", "人数", "样本比例（未加权）"], rows, demo.title))
    b.append(Table(["名次", "单位", "有效", "无效", "计划", "完成"],
                   [[str(r.rank), r.name, fmt(r.valid), fmt(r.rejected), fmt(r.target),
                     pct(r.progress)] for r in data.units[:25]], "单位排名（前 25）"))
    if data.themes:
        b.append(Heading(2, f"{numerals[(n + 2) % 9]}、意见建议", "opinions"))
        b.append(Table(["词", "提及条数"], [[w, fmt(c)] for w, c in data.themes[:20]],
                       f"高频主题词（{fmt(data.themes_from)} 条意见）"))
        b += [Para(f"“{o}”", "quote") for o in data.opinion_sample[:8]]
    b += method_blocks(data)
    doc.blocks = [x for x in b if x is not None]
    return doc


def tables_of(doc: Document) -> Sequence[Table]:
    return [b for b in doc.blocks if isinstance(b, Table)]
