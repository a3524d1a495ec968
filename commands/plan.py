"""`survey-ingest campaign plan import FILE.xlsx|csv`: the 样本采集量/链接数计划表 into a campaign.

Each row names a unit and sets its planned_samples and planned_links; a row for a unit the
campaign lacks adds it when it gives the unit's name, province and kind. The whole table is
checked first, every bad row reported with its row number (as the spreadsheet numbers it, the
header being row 1) and column; nothing is applied unless every row is good. Then the updated
definition is put in force like `campaign load` (through --url, or in process over --data-dir).
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from commands.common import CliError
from schemas.campaign import CampaignDefinition, definition_from_view

# Header spellings accepted per field (English ids, and the Chinese of the campaign's forms).
HEADERS: dict[str, tuple[str, ...]] = {
    "unit": ("unit", "unit_id", "单位编号", "单位代码"),
    "name": ("name", "unit_name", "单位名称"),
    "province": ("province", "省份", "省份编号", "所在省份"),
    "kind": ("kind", "类型", "单位类型"),
    "planned_samples": ("planned_samples", "样本采集量", "样本量", "计划样本量"),
    "planned_links": ("planned_links", "链接数", "链接数计划", "计划链接数"),
}
KINDS = {
    "initiating": "initiating", "发起单位": "initiating", "supporting": "supporting",
    "支持单位": "supporting", "volunteer": "volunteer", "志愿者": "volunteer",
    "志愿服务站": "volunteer", "志愿者团队": "volunteer",
}


class PlanError(CliError):
    """The table cannot be applied; one line per problem."""


@dataclass(frozen=True)
class PlanRow:
    row: int
    unit: str
    name: str
    province: str
    kind: str
    planned_samples: int | None
    planned_links: int | None


def read_table(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(spreadsheet row number, {header: cell text}) for every non-empty row below the header."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with path.open(encoding="utf-8-sig", newline="") as f:
                rows = [list(r) for r in csv.reader(f)]
        elif suffix in (".xlsx", ".xlsm"):
            import openpyxl

            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
            sheet = book.worksheets[0]
            rows = [["" if c is None else _cell(c) for c in r]
                    for r in sheet.iter_rows(values_only=True)]
            book.close()
        else:
            raise PlanError(f"{path}: a plan table is .xlsx or .csv, not {suffix or 'no suffix'}")
    except (OSError, UnicodeDecodeError, ValueError, KeyError) as exc:
        if isinstance(exc, PlanError):
            raise
        raise PlanError(f"{path}: cannot read: {exc}") from exc
    if not rows:
        raise PlanError(f"{path}: the table is empty")
    header = [h.strip() for h in rows[0]]
    out = []
    for number, cells in enumerate(rows[1:], start=2):
        if not any(str(c).strip() for c in cells):
            continue
        out.append((number, {h: str(c).strip() for h, c in zip(header, cells, strict=False) if h}))
    return out


def _cell(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _columns(path: Path, header: Iterable[str]) -> dict[str, str]:
    """field -> the header naming it; PlanError when unit or both plan columns are missing."""
    found: dict[str, str] = {}
    for h in header:
        for name, spellings in HEADERS.items():
            if h.lower() in spellings and name not in found:
                found[name] = h
    if "unit" not in found:
        raise PlanError(f"{path}:1: no unit column (one of {', '.join(HEADERS['unit'])})")
    if "planned_samples" not in found and "planned_links" not in found:
        raise PlanError(f"{path}:1: neither a planned_samples nor a planned_links column")
    return found


def check_plan(
    path: Path, table: Sequence[tuple[int, dict[str, str]]], definition: CampaignDefinition
) -> tuple[list[PlanRow], list[str]]:
    """The rows, and one message per problem (`FILE:row N: column 'C': ...`)."""
    header = list(table[0][1]) if table else []
    columns = _columns(path, header)
    provinces = {p.id: p.id for p in definition.provinces}
    provinces.update({p.name: p.id for p in definition.provinces})
    units = {u.id for u in definition.units}
    rows: list[PlanRow] = []
    errors: list[str] = []
    seen: dict[str, int] = {}

    def bad(row: int, field: str, message: str) -> None:
        errors.append(f"{path}:row {row}: column {columns.get(field, field)!r}: {message}")

    for number, cells in table:
        def get(field: str, cells: dict[str, str] = cells) -> str:
            return cells.get(columns[field], "") if field in columns else ""

        unit = get("unit")
        if not unit:
            bad(number, "unit", "empty")
            continue
        if unit in seen:
            bad(number, "unit", f"unit {unit!r} is also on row {seen[unit]}")
            continue
        seen[unit] = number
        plans: dict[str, int | None] = {}
        for field in ("planned_samples", "planned_links"):
            text = get(field)
            if not text:
                plans[field] = None
                continue
            try:
                value = int(text.replace(",", ""))
            except ValueError:
                value = -1
            if value < 0 or (field == "planned_links" and value > 10_000):
                top = " to 10000" if field == "planned_links" else ""
                bad(number, field, f"not a whole number from 0{top}: {text!r}")
            plans[field] = value
        province, kind, name = get("province"), get("kind"), get("name")
        if unit not in units:
            if not (province and kind and name):
                missing = [f for f, v in (("name", name), ("province", province), ("kind", kind))
                           if not v]
                bad(number, missing[0], f"unit {unit!r} is not in campaign "
                    f"{definition.campaign!r}: give its {', '.join(missing)} to add it")
                continue
            if plans["planned_samples"] is None:
                bad(number, "planned_samples", f"a new unit {unit!r} needs planned_samples")
        if province and province not in provinces:
            bad(number, "province", f"no province {province!r} in the campaign")
        if kind and kind not in KINDS:
            bad(number, "kind", f"kind {kind!r} is not one of {', '.join(sorted(KINDS))}")
        rows.append(PlanRow(
            number, unit, name, provinces.get(province, province), KINDS.get(kind, kind),
            plans["planned_samples"], plans["planned_links"]))
    return rows, errors


def apply_plan(definition: CampaignDefinition, rows: Sequence[PlanRow]) -> CampaignDefinition:
    """The definition with the plan in it (units updated in place, new ones appended)."""
    data = definition.model_dump(mode="json")
    by_id = {u["id"]: u for u in data["units"]}
    for r in rows:
        unit = by_id.get(r.unit)
        if unit is None:
            unit = {"id": r.unit, "name": r.name, "province": r.province, "kind": r.kind,
                    "planned_samples": 0}
            data["units"].append(unit)
            by_id[r.unit] = unit
        elif r.province or r.kind or r.name:
            unit.update({k: v for k, v in (("name", r.name), ("province", r.province),
                                           ("kind", r.kind)) if v})
        if r.planned_samples is not None:
            unit["planned_samples"] = r.planned_samples
        if r.planned_links is not None:
            unit["planned_links"] = r.planned_links
    try:
        return CampaignDefinition.model_validate(data)
    except ValidationError as exc:
        raise PlanError("; ".join(str(e["msg"]) for e in exc.errors())) from exc


def add_commands(camp: Any, target_flags: Any) -> None:
    plan = camp.add_parser("plan", help="the 样本采集量/链接数计划表").add_subparsers(
        dest="plan_command", required=True)
    p = plan.add_parser(
        "import", help="set planned_samples and planned_links per unit from an .xlsx or .csv",
        description="Columns (English or Chinese headers): unit/单位编号, planned_samples/"
                    "样本采集量, planned_links/链接数, and for a unit to add: name/单位名称, "
                    "province/省份, kind/类型. Nothing is applied unless every row is good.")
    p.add_argument("file", type=Path)
    p.add_argument("--campaign", required=True)
    p.add_argument("--dry-run", dest="dry_run", action="store_true",
                   help="check the table and print what would change; apply nothing")
    target_flags(p)


def run_plan(args: argparse.Namespace, request: Any) -> int:
    """`request(method, path, body)` talks to the instance (commands/review.py's helper)."""
    table = read_table(args.file)
    current = definition_from_view(request("GET", f"/v1/campaigns/{args.campaign}", None))
    rows, errors = check_plan(args.file, table, current)
    if errors:
        raise PlanError("\n".join([*errors, f"{args.file}: nothing applied "
                                   f"({len(errors)} problem{'s' if len(errors) > 1 else ''})"]))
    updated = apply_plan(current, rows)
    added = sorted({u.id for u in updated.units} - {u.id for u in current.units})
    summary: dict[str, Any] = {"campaign": args.campaign, "rows": len(rows), "units_added": added,
                               "applied": not args.dry_run}
    if not args.dry_run:
        request("PUT", f"/v1/admin/campaigns/{args.campaign}", updated.model_dump(mode="json"))
    print(json.dumps(summary, ensure_ascii=False))
    return 0
