"""The plan table (样本采集量/链接数计划表): every bad row named by row and column, nothing
applied unless all are good; and the links CLI over a stopped embedded data dir."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import openpyxl
import yaml

from commands.plan import apply_plan, check_plan, read_table
from schemas.campaign import CampaignDefinition
from tests.helpers import campaign_definition

CAMPAIGN = "c-plan"


def definition() -> CampaignDefinition:
    return CampaignDefinition.model_validate(campaign_definition(CAMPAIGN))


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8-sig")
    return path


def test_bad_rows_are_named_by_row_and_column(tmp_path: Path) -> None:
    table = write_csv(tmp_path / "plan.csv", (
        "单位编号,单位名称,省份,类型,样本采集量,链接数\n"
        "gd-cyber,,,,600,12\n"
        "gx-net,,,,lots,3\n"            # row 3: samples not a number
        "new-unit,新单位,,发起单位,50,2\n"  # row 4: a new unit without province
        "gd-cyber,,,,1,1\n"             # row 5: repeated
        "sh-uni,,广东,robot,10,20000\n"  # row 6: kind unknown, links too many
    ))
    _, errors = check_plan(table, read_table(table), definition())
    assert f"{table}:row 3: column '样本采集量': not a whole number from 0: 'lots'" in errors
    assert any(e.startswith(f"{table}:row 4: column '省份'") and "new-unit" in e for e in errors)
    assert any(e.startswith(f"{table}:row 5: column '单位编号'") and "row 2" in e for e in errors)
    assert any(e.startswith(f"{table}:row 6: column '类型'") for e in errors)
    assert any(e.startswith(f"{table}:row 6: column '链接数'") for e in errors)
    assert len(errors) == 5


def test_good_xlsx_sets_plans_and_adds_units(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["unit", "name", "province", "kind", "planned_samples", "planned_links"])
    sheet.append(["gd-cyber", None, None, None, 800, 15])
    sheet.append(["zj-vol", "浙江志愿服务站", "上海", "志愿者", 40, 2])  # province by name
    book.save(tmp_path / "plan.xlsx")
    table = read_table(tmp_path / "plan.xlsx")
    rows, errors = check_plan(tmp_path / "plan.xlsx", table, definition())
    assert errors == []
    updated = apply_plan(definition(), rows)
    units = {u.id: u for u in updated.units}
    assert (units["gd-cyber"].planned_samples, units["gd-cyber"].planned_links) == (800, 15)
    assert units["gx-net"].planned_links == 10  # untouched: the default
    assert units["zj-vol"].province == "31" and units["zj-vol"].kind == "volunteer"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "commands.cli", *args],
                          capture_output=True, text=True, timeout=120)


def test_cli_plan_import_then_issue_list_revoke_over_a_data_dir(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    campaign_file = tmp_path / "campaign.yaml"
    campaign_file.write_text(yaml.safe_dump(campaign_definition(CAMPAIGN), allow_unicode=True))
    assert cli("campaign", "load", str(campaign_file), "--data-dir", data).returncode == 0
    bad = write_csv(tmp_path / "bad.csv", "unit,planned_links\ngx-net,x\n")
    refused = cli("campaign", "plan", "import", str(bad), "--campaign", CAMPAIGN,
                  "--data-dir", data)
    assert refused.returncode == 2
    assert "row 2: column 'planned_links'" in refused.stderr and "nothing applied" in refused.stderr
    good = write_csv(tmp_path / "good.csv", "unit,planned_links\ngx-net,2\n")
    done = cli("campaign", "plan", "import", str(good), "--campaign", CAMPAIGN,
               "--data-dir", data)
    assert done.returncode == 0, done.stderr
    issued = cli("links", "issue", CAMPAIGN, "gx-net", "--count", "1", "--channel", "poster",
                 "--data-dir", data)
    assert issued.returncode == 0, issued.stderr
    code = json.loads(issued.stdout)["links"][0]["code"]
    # gx-net holds Gx1aB2cD and the new one: its plan of 2 is full.
    full = cli("links", "issue", CAMPAIGN, "gx-net", "--data-dir", data)
    assert full.returncode == 2 and "409" in full.stderr and "0 more" in full.stderr
    assert cli("links", "revoke", CAMPAIGN, code, "--data-dir", data).returncode == 0
    listed = json.loads(cli("links", "list", CAMPAIGN, "gx-net", "--data-dir", data).stdout)
    assert listed["planned_links"] == 2
    assert {lk["code"]: lk["revoked"] for lk in listed["links"]} == {
        "Gx1aB2cD": False, code: True}
