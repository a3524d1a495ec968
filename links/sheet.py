"""QR codes of one link (PNG, SVG) and a unit's printable A4 PDF sheet, as bytes on demand.

The sheet is laid out by WeasyPrint from HTML: six cards a page (2 x 3, 93 x 91 mm), each with
the code, the call to scan, its channel and link code, and crop marks at its corners to cut
along. Chinese needs a CJK font on the machine (Debian: fonts-noto-cjk; infra/pages/install.sh).
"""

from __future__ import annotations

import datetime as dt
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass

PNG_SCALE = 16  # pixels per module: a version-3 code is ~600 px, sharp printed at 6 cm
SVG_SCALE = 8


@dataclass(frozen=True)
class SheetCard:
    code: str
    channel: str
    url: str


def _qr(url: str) -> object:
    import segno

    return segno.make(url, error="m", micro=False)


def qr_png(url: str, scale: int = PNG_SCALE) -> bytes:
    out = io.BytesIO()
    _qr(url).save(out, kind="png", scale=scale, border=4)  # type: ignore[attr-defined]
    return out.getvalue()


def qr_svg(url: str, scale: int = SVG_SCALE) -> bytes:
    out = io.BytesIO()
    _qr(url).save(out, kind="svg", scale=scale, border=4, title=url)  # type: ignore[attr-defined]
    return out.getvalue()


def _svg_inline(url: str) -> str:
    return str(_qr(url).svg_inline(scale=1, border=4, omitsize=True))  # type: ignore[attr-defined]


_CSS = """
@page { size: A4; margin: 12mm; }
* { box-sizing: border-box; }
body { margin: 0; color: #111;
  font-family: "Noto Sans CJK SC", "Noto Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif; }
header { height: 16mm; border-bottom: 0.4mm solid #111; margin-bottom: 3mm; }
h1 { margin: 0; font-size: 15pt; }
header p { margin: 1mm 0 0; font-size: 9pt; color: #444; }
.grid { display: grid; grid-template-columns: 93mm 93mm; grid-auto-rows: 83mm; }
.card { position: relative; padding: 5mm; text-align: center; page-break-inside: avoid;
  break-inside: avoid; }
.qr svg { width: 52mm; height: 52mm; display: block; margin: 0 auto; }
.call { margin: 1mm 0 0; font-size: 12pt; font-weight: 700; }
.channel { margin: 0.5mm 0 0; font-size: 9pt; }
.url { margin: 0.5mm 0 0; font: 7.5pt monospace; color: #333; }
.unit { margin: 0.5mm 0 0; font-size: 7.5pt; color: #555; }
.mark { position: absolute; width: 4mm; height: 4mm; border-color: #000; border-style: solid;
  border-width: 0; }
.tl { top: 0; left: 0; border-top-width: 0.2mm; border-left-width: 0.2mm; }
.tr { top: 0; right: 0; border-top-width: 0.2mm; border-right-width: 0.2mm; }
.bl { bottom: 0; left: 0; border-bottom-width: 0.2mm; border-left-width: 0.2mm; }
.br { bottom: 0; right: 0; border-bottom-width: 0.2mm; border-right-width: 0.2mm; }
footer { font-size: 7.5pt; color: #777; padding-top: 2mm; }
"""


def sheet_html(
    campaign_title: str, unit_name: str, unit_id: str, province: str,
    cards: Sequence[SheetCard], generated: dt.datetime,
) -> str:
    e = html.escape
    parts: list[str] = []
    for card in cards:
        parts.append(
            '<section class="card">'
            '<span class="mark tl"></span><span class="mark tr"></span>'
            '<span class="mark bl"></span><span class="mark br"></span>'
            f'<div class="qr">{_svg_inline(card.url)}</div>'
            '<p class="call">扫码参与问卷调查</p>'
            f'<p class="channel">渠道：{e(card.channel) if card.channel else "—"}'
            f" · 链接码 {e(card.code)}</p>"
            f'<p class="url">{e(card.url)}</p>'
            f'<p class="unit">{e(unit_name)}</p>'
            "</section>"
        )
    where = f" · {e(province)}" if province else ""
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{e(unit_name)} · 问卷二维码</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{e(unit_name)}</h1><p>{e(campaign_title)} · 单位编号 {e(unit_id)}{where}"
        f" · 共 {len(cards)} 个链接 · 沿角线裁开</p></header>"
        f'<main class="grid">{"".join(parts)}</main>'
        f"<footer>生成于 {e(generated.strftime('%Y-%m-%d %H:%M %z'))} · "
        "每个二维码对应一个独立链接，请按渠道张贴或分发。</footer></body></html>"
    )


def sheet_pdf(
    campaign_title: str, unit_name: str, unit_id: str, province: str,
    cards: Sequence[SheetCard], generated: dt.datetime,
) -> bytes:
    """The unit's A4 sheet as PDF bytes (WeasyPrint; imported here, only this needs it)."""
    import weasyprint

    document = sheet_html(campaign_title, unit_name, unit_id, province, cards, generated)
    pdf: bytes = weasyprint.HTML(string=document).write_pdf()
    return pdf
