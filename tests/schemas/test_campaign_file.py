"""Campaign files (CONTRACT §1): the example parses; every mistake names file, line and field."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from schemas.campaign import (
    CampaignDefinition,
    CampaignFileError,
    MultiQuestion,
    ScaleQuestion,
    SingleQuestion,
    TextQuestion,
    load_campaign_file,
    parse_campaign_text,
)

# CONTRACT §1, verbatim.
CONTRACT_YAML = """\
campaign: "2023"
timezone: Asia/Shanghai
phases:   # dates inclusive, in the campaign's timezone, judged by the collector's receive time;
          # answers outside every phase are rejected (reason outside_window)
  - {name: internal_test, start: 2023-09-08, end: 2023-09-09, counts: false}
  - {name: public_test,   start: 2023-09-11, end: 2023-09-12, counts: false}
  - {name: collection,    start: 2023-09-13, end: 2023-09-22, counts: true}
work_regions: [{id: south, name: 华南}]
provinces:   [{id: "44", name: 广东, work_region: south, internet_users: 105000000, target_rate: 0.01}]
units:       [{id: gd-cyber, name: 广东省网络空间安全协会, kind: initiating, province: "44", planned_samples: 500000}]
links:       [{code: Gd7kQ2xP, unit: gd-cyber, channel: wechat, revoked: false}]  # one unit, many links
questionnaire:
  version: "2023.1"
  min_seconds: 60            # faster than this: reason too_fast
  questions:
    - {id: q1, type: scale, min: 1, max: 5, required: true}
    - {id: q2, type: single, options: [a, b, c], required: true}
    - {id: q3, type: multi,  options: [a, b, c, d], max_choices: 3}
    - {id: q4, type: text, max_length: 2000}
"""  # noqa: E501 - kept exactly as the contract writes it

# The same campaign written in block style, so that most fields sit on a line of their own.
BLOCK_YAML = """\
campaign: "2023"
timezone: Asia/Shanghai
phases:
  - name: internal_test
    start: 2023-09-08
    end: 2023-09-09
    counts: false
  - name: collection
    start: 2023-09-13
    end: 2023-09-22
    counts: true
work_regions:
  - id: south
    name: 华南
provinces:
  - id: "44"
    name: 广东
    work_region: south
    internet_users: 105000000
    target_rate: 0.01
units:
  - id: gd-cyber
    name: 广东省网络空间安全协会
    province: "44"
    planned_samples: 500000
links:
  - code: Gd7kQ2xP
    unit: gd-cyber
  - code: Gd7kQ2xQ
    unit: gd-cyber
questionnaire:
  version: "2023.1"
  min_seconds: 60
  questions:
    - id: q1
      type: scale
      min: 1
      max: 5
      required: true
    - id: q3
      type: multi
      options: [a, b, c, d]
      max_choices: 3
"""


def _write(tmp_path: Path, text: str, name: str = "campaign.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _line_number(text: str, line: str) -> int:
    return text.splitlines().index(line) + 1


def test_contract_example_campaign_file_parses(tmp_path: Path) -> None:
    defn = load_campaign_file(_write(tmp_path, CONTRACT_YAML))

    assert defn.campaign == "2023"
    assert defn.timezone == "Asia/Shanghai"
    assert [(p.name, p.start, p.end, p.counts) for p in defn.phases] == [
        ("internal_test", dt.date(2023, 9, 8), dt.date(2023, 9, 9), False),
        ("public_test", dt.date(2023, 9, 11), dt.date(2023, 9, 12), False),
        ("collection", dt.date(2023, 9, 13), dt.date(2023, 9, 22), True),
    ]
    (province,) = defn.provinces
    assert (province.id, province.work_region) == ("44", "south")
    assert province.target == 1_050_000  # internet_users * target_rate
    (unit,) = defn.units
    assert (unit.id, unit.kind, unit.province, unit.planned_samples) == (
        "gd-cyber", "initiating", "44", 500_000,
    )
    (link,) = defn.links
    assert (link.code, link.unit, link.channel, link.revoked) == (
        "Gd7kQ2xP", "gd-cyber", "wechat", False,
    )
    q = defn.questionnaire
    assert (q.version, q.min_seconds) == ("2023.1", 60)
    assert [type(x) for x in q.questions] == [
        ScaleQuestion, SingleQuestion, MultiQuestion, TextQuestion,
    ]
    assert q.questions[2].max_choices == 3  # type: ignore[union-attr]


def test_block_style_campaign_file_parses() -> None:
    defn = parse_campaign_text(BLOCK_YAML, "block.yaml")
    assert [lk.code for lk in defn.links] == ["Gd7kQ2xP", "Gd7kQ2xQ"]


def test_campaign_written_as_json_parses_to_the_same_definition() -> None:
    from_yaml = parse_campaign_text(CONTRACT_YAML)
    as_json = json.dumps(from_yaml.model_dump(mode="json"), ensure_ascii=False, indent=2)
    assert parse_campaign_text(as_json, "campaign.json") == from_yaml


# (what is wrong, text replaced, replacement, path in the message, field in the message, line)
CONTRACT_MISTAKES = [
    ("province with an unknown work_region",
     "work_region: south", "work_region: north", "provinces.0.work_region", "work_region", 9),
    ("scale question with max below min",
     "type: scale, min: 1, max: 5", "type: scale, min: 5, max: 1",
     "questionnaire.questions.0", "", 16),
    ("impossible date", "end: 2023-09-22", "end: 2023-09-31", "phases.2.end", "end", 7),
    ("date that is not a date", "start: 2023-09-11", "start: someday", "phases.1.start",
     "start", 6),
    ("phase ending before it starts", "start: 2023-09-08, end: 2023-09-09",
     "start: 2023-09-09, end: 2023-09-08", "phases.0", "", 5),
    ("link pointing to an unknown unit", "unit: gd-cyber", "unit: nobody", "links.0.unit",
     "unit", 11),
    ("unit in an unknown province", 'province: "44"', 'province: "45"', "units.0.province",
     "province", 10),
    ("wrong type deep inside a question", "max_choices: 3", "max_choices: three",
     "questionnaire.questions.2.multi.max_choices", "max_choices", 18),
    ("unknown question type", "type: text", "type: essay", "questionnaire.questions.3", "", 19),
    ("negative planned samples", "planned_samples: 500000", "planned_samples: -1",
     "units.0.planned_samples", "planned_samples", 10),
    ("target rate above one", "target_rate: 0.01", "target_rate: 2", "provinces.0.target_rate",
     "target_rate", 9),
    ("unknown timezone", "timezone: Asia/Shanghai", "timezone: Mars/Olympus", "timezone",
     "timezone", 2),
    ("unknown field", "revoked: false", "revoked: false, colour: red", "links.0.colour",
     "colour", 11),
]


@pytest.mark.parametrize(
    ("old", "new", "path", "field", "line"),
    [case[1:] for case in CONTRACT_MISTAKES],
    ids=[case[0] for case in CONTRACT_MISTAKES],
)
def test_campaign_file_mistake_names_file_line_and_field(
    tmp_path: Path, old: str, new: str, path: str, field: str, line: int
) -> None:
    assert old in CONTRACT_YAML
    file = _write(tmp_path, CONTRACT_YAML.replace(old, new, 1))

    with pytest.raises(CampaignFileError) as caught:
        load_campaign_file(file)

    message = str(caught.value)
    assert f"{file}:{line}:" in message
    assert f"at {path}" in message
    if field:
        assert f"field {field!r}" in message


def test_phases_that_overlap_are_refused_at_the_later_phase() -> None:
    text = CONTRACT_YAML.replace("start: 2023-09-11", "start: 2023-09-09")
    with pytest.raises(CampaignFileError) as caught:
        parse_campaign_text(text, "c.yaml")
    message = str(caught.value)
    assert "c.yaml:6:" in message
    assert "at phases.1.start" in message
    assert "overlap" in message


@pytest.mark.parametrize(
    ("old", "new", "duplicate_line", "path", "field"),
    [
        ("  - code: Gd7kQ2xQ", "  - code: Gd7kQ2xP", "  - code: Gd7kQ2xP", "links.1.code",
         "code"),
        ("    planned_samples: 500000",
         '    planned_samples: 500000\n  - id: gd-cyber\n    name: x\n    province: "44"\n'
         "    planned_samples: 1",
         "  - id: gd-cyber", "units.1.id", "id"),
    ],
    ids=["link code", "unit id"],
)
def test_duplicate_ids_are_refused_where_the_second_one_is_written(
    old: str, new: str, duplicate_line: str, path: str, field: str
) -> None:
    text = BLOCK_YAML.replace(old, new, 1)
    second = max(i for i, ln in enumerate(text.splitlines(), start=1) if ln == duplicate_line)
    with pytest.raises(CampaignFileError) as caught:
        parse_campaign_text(text, "c.yaml")
    message = str(caught.value)
    assert message.startswith(f"c.yaml:{second}: at {path}:")
    assert f"field {field!r}" in message
    assert "appears twice" in message


@pytest.mark.parametrize(
    ("old", "new", "bad_line", "path", "field"),
    [
        ("      max_choices: 3", "      max_choices: three", "      max_choices: three",
         "questionnaire.questions.1.multi.max_choices", "max_choices"),
        ("    work_region: south", "    work_region: west", "    work_region: west",
         "provinces.0.work_region", "work_region"),
        ("    unit: gd-cyber", "    unit: nobody", "    unit: nobody", "links.0.unit", "unit"),
        ("    end: 2023-09-22", "    end: 2023-02-30", "    end: 2023-02-30", "phases.1.end",
         "end"),
        ("    internet_users: 105000000", "    internet_users: many", "    internet_users: many",
         "provinces.0.internet_users", "internet_users"),
        # A rule over the whole question points at the question.
        ("      max: 5", "      max: 0", "    - id: q1", "questionnaire.questions.0.scale",
         "scale"),
    ],
    ids=["deep type", "unknown work_region", "unknown unit", "impossible date", "not a number",
         "max below min"],
)
def test_block_style_mistake_points_at_the_exact_line(
    old: str, new: str, bad_line: str, path: str, field: str
) -> None:
    text = BLOCK_YAML.replace(old, new, 1)
    with pytest.raises(CampaignFileError) as caught:
        parse_campaign_text(text, "block.yaml")
    message = str(caught.value)
    assert message.startswith(f"block.yaml:{_line_number(text, bad_line)}: at {path}:")
    assert f"field {field!r}" in message


def test_yaml_syntax_error_names_file_and_line() -> None:
    text = CONTRACT_YAML.replace("work_regions: [{id: south, name: 华南}]",
                                 "work_regions: [{id: south, name: 华南}")
    with pytest.raises(CampaignFileError) as caught:
        parse_campaign_text(text, "broken.yaml")
    assert str(caught.value).startswith("broken.yaml:")
    assert str(caught.value).split(":")[1].isdigit()


@pytest.mark.parametrize("text", ["- just\n- a list\n", "42\n", ""])
def test_file_that_is_not_a_mapping_is_refused(text: str) -> None:
    with pytest.raises(CampaignFileError, match=r"^odd\.yaml: expected a mapping"):
        parse_campaign_text(text, "odd.yaml")


def test_missing_required_section_is_named() -> None:
    text = CONTRACT_YAML.split("questionnaire:")[0]
    with pytest.raises(CampaignFileError) as caught:
        parse_campaign_text(text, "c.yaml")
    assert "at questionnaire" in str(caught.value)
    assert "field 'questionnaire'" in str(caught.value)


def test_unreadable_campaign_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(CampaignFileError, match=r"nowhere\.yaml: cannot read"):
        load_campaign_file(missing)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CampaignFileError, match=r"binary\.yaml: cannot read"):
        load_campaign_file(binary)


def test_several_mistakes_are_all_reported() -> None:
    text = CONTRACT_YAML.replace("min_seconds: 60", "min_seconds: -5").replace(
        "max_length: 2000", "max_length: 0"
    )
    with pytest.raises(CampaignFileError) as caught:
        parse_campaign_text(text, "c.yaml")
    message = str(caught.value)
    assert "c.yaml:14: at questionnaire.min_seconds" in message
    assert "c.yaml:19: at questionnaire.questions.3.text.max_length" in message


def test_parsed_definition_is_frozen() -> None:
    defn = parse_campaign_text(CONTRACT_YAML)
    assert isinstance(defn, CampaignDefinition)
    with pytest.raises(ValueError):
        defn.campaign = "2024"  # type: ignore[misc]
