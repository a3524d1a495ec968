"""`survey-ingest links qr`: a QR code (PNG and SVG) per unit link and a printable sheet per unit
(sheet.html, and sheet.pdf: A4 with crop marks).

The campaign comes from a campaign file, a running instance (--url), or a stopped embedded
instance's data dir. Revoked links get no code, and codes left from an earlier run for a link
revoked since are removed, so a sheet printed today never carries a dead link.
"""

from __future__ import annotations

import datetime as dt
import html
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from core.registry import Registry
from links.sheet import SheetCard, sheet_pdf
from schemas.campaign import (
    CampaignDefinition,
    Province,
    Unit,
    definition_from_view,
    load_campaign_file,
)

PNG_SCALE = 16  # pixels per module: a version-3 code is ~600 px, sharp when printed at 6 cm
PRINT_SIZE_MM = 58


class QrError(Exception):
    """A message for the user; printed without a traceback, exit status 2."""


@dataclass(frozen=True)
class LinkEntry:
    code: str
    unit: str
    channel: str
    revoked: bool


@dataclass(frozen=True)
class CampaignLinks:
    campaign: str
    units: dict[str, Unit]
    provinces: dict[str, Province]
    links: list[LinkEntry]
    timezone: str = "Asia/Shanghai"
    title: str = ""

    @classmethod
    def from_definition(cls, defn: CampaignDefinition) -> CampaignLinks:
        return cls(
            campaign=defn.campaign,
            units={u.id: u for u in defn.units},
            provinces={p.id: p for p in defn.provinces},
            links=[LinkEntry(lk.code, lk.unit, lk.channel, lk.revoked) for lk in defn.links],
            timezone=defn.timezone, title=defn.title,
        )


@dataclass
class QrSummary:
    campaign: str
    out: str
    base_url: str
    units: list[str] = field(default_factory=list)
    links: int = 0
    revoked_skipped: int = 0
    units_without_links: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign, "out": self.out, "base_url": self.base_url,
            "units": self.units, "links": self.links, "revoked_skipped": self.revoked_skipped,
            "units_without_links": self.units_without_links,
        }


def link_url(base_url: str, code: str) -> str:
    return f"{base_url.rstrip('/')}/s/{code}"


def write_qr_codes(
    source: CampaignLinks, out: Path, base_url: str, units: Sequence[str] | None = None
) -> QrSummary:
    """Writes `out/<unit>/<code>.png|.svg` and `out/<unit>/sheet.html` for the chosen units."""
    import segno  # only this command needs it

    if not base_url.startswith(("http://", "https://")):
        raise QrError(f"--base-url must start with http:// or https://, not {base_url!r}")
    chosen = list(dict.fromkeys(units)) if units else list(source.units)
    unknown = [u for u in chosen if u not in source.units]
    if unknown:
        raise QrError(f"campaign {source.campaign!r} has no unit {', '.join(map(repr, unknown))}")
    for unit_id in chosen:
        if unit_id in (".", ".."):
            raise QrError(f"unit id {unit_id!r} cannot be used as a directory name")

    summary = QrSummary(source.campaign, str(out), base_url.rstrip("/"))
    generated = dt.datetime.now(zoneinfo.ZoneInfo(source.timezone))
    for unit_id in chosen:
        unit = source.units[unit_id]
        mine = [lk for lk in source.links if lk.unit == unit_id]
        active = [lk for lk in mine if not lk.revoked]
        unit_dir = out / unit_id
        for lk in mine:
            if lk.revoked:
                summary.revoked_skipped += 1
                for stale in (unit_dir / f"{lk.code}.png", unit_dir / f"{lk.code}.svg"):
                    stale.unlink(missing_ok=True)
        if not active:
            summary.units_without_links.append(unit_id)
            continue
        unit_dir.mkdir(parents=True, exist_ok=True)
        cards: list[tuple[LinkEntry, str, str]] = []
        for lk in active:
            url = link_url(base_url, lk.code)
            qr = segno.make(url, error="m", micro=False)
            png, svg = unit_dir / f"{lk.code}.png", unit_dir / f"{lk.code}.svg"
            qr.save(str(png), scale=PNG_SCALE, border=4)
            qr.save(str(svg), scale=8, border=4, title=url)
            summary.files += [str(png), str(svg)]
            cards.append((lk, url, qr.svg_inline(scale=1, border=4, omitsize=True)))
        province = source.provinces.get(unit.province)
        sheet = unit_dir / "sheet.html"
        sheet.write_text(
            _sheet_html(source.campaign, unit, province, cards, generated), encoding="utf-8"
        )
        summary.files.append(str(sheet))
        # The same cards as an A4 PDF with crop marks (links/sheet.py), as the portal serves it.
        pdf = unit_dir / "sheet.pdf"
        pdf.write_bytes(sheet_pdf(
            source.title or source.campaign, unit.name, unit.id,
            province.name if province else "",
            [SheetCard(lk.code, lk.channel, url) for lk, url, _ in cards], generated))
        summary.files.append(str(pdf))
        summary.units.append(unit_id)
        summary.links += len(active)
    return summary


_SHEET_CSS = f"""
*{{box-sizing:border-box}}
body{{margin:0;padding:24px;color:#111;background:#fff;
 font-family:"Noto Sans CJK SC","Noto Sans SC","PingFang SC","Microsoft YaHei",sans-serif}}
header{{border-bottom:2px solid #111;margin-bottom:18px;padding-bottom:10px}}
h1{{margin:0 0 4px;font-size:26px}}
header p{{margin:0;color:#444;font-size:14px}}
.grid{{display:grid;grid-template-columns:repeat(auto-fill,minmax(78mm,1fr));gap:8mm}}
.card{{border:1px dashed #999;border-radius:3mm;padding:5mm;text-align:center;
 break-inside:avoid;page-break-inside:avoid}}
.card .qr svg{{width:{PRINT_SIZE_MM}mm;height:{PRINT_SIZE_MM}mm;display:block;margin:0 auto}}
.call{{margin:3mm 0 1mm;font-size:17px;font-weight:700}}
.channel{{margin:0;font-size:14px}}
.url{{margin:2mm 0 0;font:12px/1.3 ui-monospace,Menlo,Consolas,monospace;
 word-break:break-all;color:#333}}
.unit{{margin:1mm 0 0;font-size:12px;color:#555}}
footer{{margin-top:18px;color:#777;font-size:12px}}
@page{{size:A4;margin:12mm}}
@media print{{body{{padding:0}}}}
"""


def _sheet_html(
    campaign: str,
    unit: Unit,
    province: Province | None,
    cards: Iterable[tuple[LinkEntry, str, str]],
    generated: dt.datetime,
) -> str:
    e = html.escape
    items = list(cards)
    where = f" · {e(province.name)}" if province else ""
    body = "\n".join(
        '<section class="card">'
        f'<div class="qr">{svg}</div>'
        '<p class="call">扫码参与问卷调查</p>'
        f'<p class="channel">渠道：{e(lk.channel) if lk.channel else "—"} · 链接码 {e(lk.code)}</p>'
        f'<p class="url">{e(url)}</p>'
        f'<p class="unit">{e(unit.name)}</p>'
        "</section>"
        for lk, url, svg in items
    )
    return (
        '<!doctype html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{e(unit.name)} · 问卷二维码</title>\n<style>{_SHEET_CSS}</style>\n</head>\n"
        "<body>\n<header>"
        f"<h1>{e(unit.name)}</h1>"
        f"<p>调查活动 {e(campaign)} · 单位编号 {e(unit.id)}{where} · 共 {len(items)} 个链接</p>"
        f'</header>\n<main class="grid">\n{body}\n</main>\n'
        f"<footer>生成于 {e(generated.strftime('%Y-%m-%d %H:%M %z'))} · "
        "每个二维码对应一个独立链接，请按渠道张贴或分发。</footer>\n</body>\n</html>\n"
    )


# ---- where the campaign comes from --------------------------------------------------------


def from_file(path: Path, campaign: str) -> CampaignLinks:
    defn = load_campaign_file(path)
    if defn.campaign != campaign:
        raise QrError(f"{path} defines campaign {defn.campaign!r}, not {campaign!r}")
    return CampaignLinks.from_definition(defn)


def from_url(url: str, campaign: str, token: str = "") -> CampaignLinks:
    """The campaign from a running instance. With a token, each unit's links come from the
    links API (api/links.py): the links units issued themselves and every revocation, which
    the campaign definition alone does not hold."""
    import httpx

    target = f"{url.rstrip('/')}/v1/campaigns/{campaign}"
    headers = {"authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.get(target, timeout=30, headers=headers)
    except httpx.HTTPError as exc:
        raise QrError(f"cannot reach {url}: {exc}") from exc
    if response.status_code == 404:
        raise QrError(f"{url} has no campaign {campaign!r}")
    if response.status_code != 200:
        raise QrError(f"{target} answered {response.status_code}: {response.text[:300]}")
    try:
        source = CampaignLinks.from_definition(definition_from_view(response.json()))
    except (ValueError, ValidationError) as exc:
        raise QrError(f"{target} did not return a campaign definition: {exc}") from exc
    if not token:
        return source
    links: list[LinkEntry] = []
    for unit in source.units:
        try:
            r = httpx.get(f"{target}/units/{unit}/links", timeout=30, headers=headers)
        except httpx.HTTPError as exc:
            raise QrError(f"cannot reach {url}: {exc}") from exc
        if r.status_code != 200:
            raise QrError(f"{target}/units/{unit}/links answered {r.status_code}: {r.text[:300]}")
        links += [LinkEntry(lk["code"], unit, lk["channel"], bool(lk["revoked"]))
                  for lk in r.json()["links"]]
    return CampaignLinks(source.campaign, source.units, source.provinces, links,
                         source.timezone, source.title)


def from_registry(registry: Registry, campaign: str, source: str) -> CampaignLinks:
    """A campaign's links as a registry holds them now (revocations applied)."""
    state = registry.get(campaign)
    if state is None:
        raise QrError(f"no campaign {campaign!r} in {source}")
    now = dt.datetime.now(dt.UTC)
    return CampaignLinks(
        campaign=campaign,
        units=dict(state.units),
        provinces=dict(state.provinces),
        links=[
            LinkEntry(lk.code, lk.unit, lk.channel, state.link_revoked_at(lk.code, now))
            for lk in state.links.values()
        ],
        timezone=state.definition.timezone, title=state.definition.title,
    )
