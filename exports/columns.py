"""Which columns an export has, in the contract's order (CONTRACT §9), and what each one means:
the plan every format writes and the codebook describes.

Questions: the campaign's current questionnaire in its order, then any question only an older
version had (its answers are still stored), in version order. No device, client or network hash
is ever a column: the plan is the whole list, and nothing outside it is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from core.registry import CampaignState
from schemas.campaign import (
    AttentionQuestion,
    MultiQuestion,
    Question,
    ScaleQuestion,
    SingleQuestion,
    TextQuestion,
)

Kind = Literal["fixed", "scale", "single", "multi", "text", "attention"]
# Codebook types: what a reader gets in a typed format (parquet, sav).
ColumnType = Literal["string", "datetime", "integer", "number", "binary"]


@dataclass(frozen=True)
class Column:
    name: str
    label: str
    type: ColumnType
    kind: Kind = "fixed"
    question: str = ""  # the question id, for answer columns
    option: str = ""  # the option, for a multi-choice question's 0/1 column
    values: tuple[str, ...] = ()  # the defined values (options, scale points), in order
    note: str = ""
    extra: dict[str, object] = field(default_factory=dict)


FIXED: Final[tuple[Column, ...]] = (
    Column("submission_id", "Answer sheet id (the respondent's submission id)", "string"),
    Column("received_at", "When the collector received the sheet (campaign time zone)",
           "datetime", note="ISO 8601 with offset in csv, xlsx and sav; a timestamp in parquet"),
    Column("status", "Standing status after review decisions", "string",
           values=("accepted", "rejected", "test")),
    Column("reasons", "Reason codes of the verdict, ';'-joined", "string",
           note="the judged reasons; a review decision changes the status, not the reasons"),
    Column("unit", "Credited unit (through the link)", "string"),
    Column("unit_name", "Credited unit's name", "string"),
    Column("province", "Credited province (the unit's)", "string"),
    Column("province_name", "Credited province's name", "string"),
    Column("work_region", "Credited work region", "string"),
    Column("channel", "Channel of the link", "string"),
    Column("link_code", "Link the sheet came through", "string"),
    Column("questionnaire_version", "Questionnaire version answered", "string"),
    Column("duration_seconds", "Seconds from start to submit (as the answering page sent)",
           "number"),
    Column("respondent_province", "Respondent's own province (as answered)", "string"),
    Column("respondent_city", "Respondent's own city (as answered)", "string"),
    Column("age_group", "Respondent's age group (as answered)", "string"),
)
OPINION: Final = Column(
    "opinion", "Opinion or suggestion (free text; phone and ID numbers masked)", "string"
)
# What no export may carry (CONTRACT §9); checked against every plan.
FORBIDDEN: Final = frozenset({"device_hash", "device_id", "client", "network", "ip"})


def questions_of(state: CampaignState) -> list[Question]:
    current = list(state.definition.questionnaire.questions)
    seen = {q.id for q in current}
    older: list[Question] = []
    for version in state.questionnaires.values():
        for q in version.questions:
            if q.id not in seen:
                seen.add(q.id)
                older.append(q)
    return current + older


def _label(q: Question) -> str:
    return q.label or q.id


def answer_columns(q: Question) -> list[Column]:
    if isinstance(q, MultiQuestion):
        return [
            Column(f"{q.id}_{option}", f"{_label(q)}: {option}", "binary", kind="multi",
                   question=q.id, option=option, values=("0", "1"),
                   note="1 chosen, 0 not chosen; empty when the question was not answered")
            for option in q.options
        ]
    if isinstance(q, ScaleQuestion):
        points = tuple(str(v) for v in range(q.min, q.max + 1))
        return [Column(q.id, _label(q), "integer", kind="scale", question=q.id, values=points)]
    if isinstance(q, SingleQuestion | AttentionQuestion):
        kind: Kind = "attention" if isinstance(q, AttentionQuestion) else "single"
        extra: dict[str, object] = (
            {"expected": q.expected} if isinstance(q, AttentionQuestion) else {}
        )
        return [Column(q.id, _label(q), "string", kind=kind, question=q.id,
                       values=tuple(q.options), extra=extra,
                       note="in sav: numeric codes 1..n with the options as value labels")]
    assert isinstance(q, TextQuestion)
    return [Column(q.id, _label(q), "string", kind="text", question=q.id,
                   note="as stored: phone and ID numbers masked when judged")]


def plan(state: CampaignState) -> list[Column]:
    """Every column of an export of this campaign, in order; names are unique."""
    columns = list(FIXED)
    for q in questions_of(state):
        columns.extend(answer_columns(q))
    columns.append(OPINION)
    names = [c.name for c in columns]
    duplicated = {n for n in names if names.count(n) > 1}
    if duplicated:
        # A multi-choice option column can collide with another question's id (q3 option "1"
        # and a question "q3_1"): refuse rather than write two columns of one name.
        raise ValueError(f"export columns named twice: {', '.join(sorted(duplicated))}")
    if FORBIDDEN & set(names):
        raise ValueError(f"a question named like a hash column: {sorted(FORBIDDEN & set(names))}")
    return columns
