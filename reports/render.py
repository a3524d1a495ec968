"""Writes a report's document three ways: report.html (self-contained, charts inline as SVG),
report.pdf (WeasyPrint from the same HTML with CSS paged media: contents with page numbers,
running page numbers, real tables, the CJK font) and report.docx (python-docx, the same
blocks, every figure an editable table)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from core.progress import SILENT, Progress
from reports import charts, fonts
from reports.document import Block, Chart, Document, Heading, PageBreak, Para, Table, build_document
from reports.model import ReportData

CSS: Final = """
@page { size: A4; margin: 18mm 16mm 20mm 16mm;
  @bottom-center { content: "第 " counter(page) " 页 / 共 " counter(pages) " 页"; font-size: 8pt;
  color: #666; } }
@page :first { @bottom-center { content: none; } }
body { font-family: "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", sans-serif;
  font-size: 9.5pt; color: #222; line-height: 1.45; }
h1 { font-size: 17pt; margin: 0 0 4pt; color: #0d47a1; }
h2 { font-size: 13pt; border-bottom: 1px solid #90a4ae; margin-top: 14pt; color: #0d47a1; }
h3 { font-size: 10.5pt; margin: 10pt 0 3pt; page-break-after: avoid; }
table { border-collapse: collapse; width: 100%; margin: 3pt 0 8pt; font-size: 8.5pt; }
caption { text-align: left; font-weight: bold; padding: 2pt 0; }
th { background: #e3f2fd; } th, td { border: 0.5pt solid #b0bec5; padding: 2pt 5pt; }
td.n { text-align: right; white-space: nowrap; }
tr { page-break-inside: avoid; } table.keep { break-inside: avoid; }
h2, h3, caption { break-after: avoid; } thead { display: table-header-group; }
.note { color: #555; font-size: 8pt; } .lead { color: #37474f; }
.quote { margin: 2pt 0 2pt 10pt; padding-left: 6pt; border-left: 2pt solid #1565c0; }
.pb { page-break-after: always; } .chart svg { width: 100%; height: auto; }
.toc a { color: #222; text-decoration: none; }
.toc a::after { content: leader('.') target-counter(attr(href), page); }
@media screen { body { max-width: 900px; margin: 2em auto; } }
"""


_NUMBER = re.compile(r"^[+-]?[\d,.]+(%| 秒)?$")


def _cell(text: str, first: bool) -> str:
    e = html.escape(text)
    numeric = not first and bool(_NUMBER.match(text))
    return f'<td class="n">{e}</td>' if numeric else f"<td>{e}</td>"


def _table_html(t: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.header)
    body = "".join("<tr>" + "".join(_cell(c, i == 0) for i, c in enumerate(row)) + "</tr>"
                   for row in t.rows)
    cap = f"<caption>{html.escape(t.caption)}</caption>" if t.caption else ""
    note = f'<p class="note">{html.escape(t.note)}</p>' if t.note else ""
    # A short table stays on one page with its caption (a long one repeats its header row).
    keep = ' class="keep"' if len(t.rows) <= 15 else ""
    return f"<table{keep}>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"


def chart_svg(chart: Chart) -> str:
    from reports.model import QuestionResult

    if chart.kind == "shares":
        assert isinstance(chart.payload, QuestionResult)
        return charts.shares_chart(chart.payload)
    if chart.kind == "curve":
        return charts.curve_chart(chart.payload)  # type: ignore[arg-type]
    return charts.regions_chart(chart.payload)  # type: ignore[arg-type]


def _block_html(block: Block) -> str:
    if isinstance(block, Heading):
        anchor = f' id="{block.anchor}"' if block.anchor else ""
        return f"<h{block.level}{anchor}>{html.escape(block.text)}</h{block.level}>"
    if isinstance(block, Para):
        cls = f' class="{block.style}"' if block.style else ""
        return f"<p{cls}>{html.escape(block.text)}</p>"
    if isinstance(block, Table):
        return _table_html(block)
    if isinstance(block, Chart):
        return f'<div class="chart" title="{html.escape(block.title)}">{chart_svg(block)}</div>'
    return '<div class="pb"></div>'


def render_html(doc: Document) -> str:
    parts = [f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>'
             f"{html.escape(doc.title)} · {html.escape(doc.subtitle)}</title>"
             f"<style>{CSS}</style></head><body>"]
    first_break = True
    for block in doc.blocks:
        parts.append(_block_html(block))
        if isinstance(block, PageBreak) and first_break:
            first_break = False  # after the summary page: the contents
            items = "".join(f'<li><a href="#{h.anchor}">{html.escape(h.text)}</a></li>'
                            for h in doc.sections)
            parts.append(f'<h2>目录</h2><ul class="toc">{items}</ul><div class="pb"></div>')
    parts.append("</body></html>")
    return "\n".join(parts)


def render_pdf(html_text: str, path: Path, base: Path) -> int:
    """WeasyPrint: the HTML with its paged-media CSS; returns the page count."""
    import logging

    # Before the import: WeasyPrint logs its progress at INFO while parsing its own stylesheet.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    from weasyprint import HTML

    document = HTML(string=html_text, base_url=str(base)).render()
    document.write_pdf(path)
    return len(document.pages)


def render_docx(doc: Document, path: Path) -> int:
    """python-docx: headings, paragraphs and every table as an editable Word table (charts are
    left out: their figures are the tables). Returns the number of tables."""
    from docx import Document as Docx
    from docx.enum.section import WD_ORIENT
    from docx.oxml.ns import qn
    from docx.shared import Pt

    out = Docx()
    style = out.styles["Normal"]
    style.font.name = "Noto Sans CJK SC"
    style.font.size = Pt(9.5)
    style.element.rPr.rFonts.set(qn("w:eastAsia"), "Noto Sans CJK SC")
    out.sections[0].orientation = WD_ORIENT.PORTRAIT
    tables = 0
    for block in doc.blocks:
        if isinstance(block, Heading):
            out.add_heading(block.text, level=min(block.level - 1, 3) or 0)
        elif isinstance(block, Para):
            out.add_paragraph(block.text)
        elif isinstance(block, Table):
            if block.caption:
                out.add_paragraph(block.caption).runs[0].bold = True
            table = out.add_table(rows=1, cols=len(block.header))
            table.style = "Table Grid"
            for cell, text in zip(table.rows[0].cells, block.header, strict=True):
                cell.text = text
            for row in block.rows:
                for cell, text in zip(table.add_row().cells, row, strict=True):
                    cell.text = text
            if block.note:
                out.add_paragraph(block.note)
            tables += 1
        elif isinstance(block, PageBreak):
            out.add_page_break()  # type: ignore[no-untyped-call]
    out.add_paragraph("合理化建议（由秘书处填写）：")
    out.save(str(path))
    return tables


@dataclass(frozen=True)
class Written:
    html: Path
    pdf: Path
    docx: Path
    pages: int
    charts: int
    tables: int


def write_report(data: ReportData, out_dir: Path, *, require_cjk_font: bool = False,
                 progress: Progress = SILENT) -> Written:
    """report.html, report.pdf and report.docx into `out_dir`; one `progress` step each."""
    fonts.configure(required=require_cjk_font)
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = build_document(data)
    text = render_html(doc)
    html_path, pdf_path, docx_path = (out_dir / f"report.{x}" for x in ("html", "pdf", "docx"))
    html_path.write_text(text, encoding="utf-8")
    progress.advance()
    pages = render_pdf(text, pdf_path, out_dir)
    progress.advance()
    tables = render_docx(doc, docx_path)
    progress.advance()
    n_charts = sum(1 for b in doc.blocks if isinstance(b, Chart))
    return Written(html_path, pdf_path, docx_path, pages, n_charts, tables)
