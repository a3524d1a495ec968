"""The campaign definition an organiser writes (CONTRACT §1), and how a file becomes one."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Phase(_Model):
    name: Identifier
    start: dt.date
    end: dt.date
    counts: bool

    @model_validator(mode="after")
    def _ordered(self) -> Phase:
        if self.end < self.start:
            raise ValueError(
                f"phase {self.name!r} ends ({self.end}) before it starts ({self.start})"
            )
        return self


class WorkRegion(_Model):
    id: Identifier
    name: str = Field(min_length=1, max_length=200)


class Province(_Model):
    id: Identifier
    name: str = Field(min_length=1, max_length=200)
    work_region: Identifier
    internet_users: int = Field(ge=0)
    target_rate: float = Field(ge=0, le=1)

    @property
    def target(self) -> int:
        return round(self.internet_users * self.target_rate)


class Unit(_Model):
    id: Identifier
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["initiating", "supporting", "volunteer"] = "initiating"
    province: Identifier
    planned_samples: int = Field(ge=0)
    # The 链接数计划: the most live (unrevoked) links the unit may issue itself (CONTRACT §8).
    planned_links: int = Field(default=10, ge=0, le=10_000)


class Link(_Model):
    code: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    unit: Identifier
    channel: str = Field(default="", max_length=64)
    revoked: bool = False


class ScaleQuestion(_Model):
    id: Identifier
    type: Literal["scale"]
    min: int
    max: int
    required: bool = False
    label: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> ScaleQuestion:
        if self.max < self.min:
            raise ValueError(f"question {self.id!r}: max ({self.max}) is below min ({self.min})")
        return self


class SingleQuestion(_Model):
    id: Identifier
    type: Literal["single"]
    options: list[str] = Field(min_length=1)
    required: bool = False
    label: str = ""


class MultiQuestion(_Model):
    id: Identifier
    type: Literal["multi"]
    options: list[str] = Field(min_length=1)
    max_choices: int | None = Field(default=None, ge=1)
    required: bool = False
    label: str = ""


class TextQuestion(_Model):
    id: Identifier
    type: Literal["text"]
    max_length: int = Field(default=2000, ge=1, le=20000)
    required: bool = False
    label: str = ""


class AttentionQuestion(_Model):
    """An instructed-answer item ("本题请选择'比较满意'"): answering anything but `expected`,
    or nothing, is the reason attention_check_failed. Shown like a single-choice question."""

    id: Identifier
    type: Literal["attention"]
    options: list[str] = Field(min_length=2)
    expected: str
    required: bool = True
    label: str = ""

    @model_validator(mode="after")
    def _expected_is_an_option(self) -> AttentionQuestion:
        if self.expected not in self.options:
            raise _LocatedError(
                ("expected",),
                f"question {self.id!r}: expected answer {self.expected!r} is not one of its"
                " options",
            )
        return self


Question = Annotated[
    ScaleQuestion | SingleQuestion | MultiQuestion | TextQuestion | AttentionQuestion,
    Field(discriminator="type"),
]


class Questionnaire(_Model):
    version: str = Field(min_length=1, max_length=64)
    min_seconds: float = Field(default=0, ge=0)
    # Speed floors besides min_seconds (0: off). Per item: seconds per answered question (the
    # literature puts careful reading at about 2 s an item). Relative: a fraction of the median
    # completion time in force for this version (see core.rules.check_timing for which median).
    min_seconds_per_item: float = Field(default=0, ge=0, le=600)
    relative_min_fraction: float = Field(default=0, ge=0, lt=1)
    # The median takes effect only once it rests on this many accepted sheets of the version.
    relative_min_samples: int = Field(default=100, ge=1)
    # How often a running instance recomputes and publishes the median (embedded `serve`).
    relative_refresh_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    # Straight-lining needs enough scale items to be meaningful; below this it is not judged.
    straight_lining_min_items: int = Field(default=5, ge=2)
    questions: list[Question] = Field(min_length=1)

    @field_validator("questions")
    @classmethod
    def _unique_ids(cls, questions: list[Question]) -> list[Question]:
        seen: set[str] = set()
        for q in questions:
            if q.id in seen:
                raise ValueError(f"question id {q.id!r} appears twice")
            seen.add(q.id)
        return questions


class Visibility(_Model):
    """Who may read the campaign's crowd surfaces (leaderboard, /live, /pacing, /display):
    `public` (anyone) or `private` (a token of the campaign; CONTRACT §7)."""

    leaderboard: Literal["public", "private"] = "public"

class Margin(_Model):
    """Population shares the report weighting rakes to (CONTRACT §10): over a respondent field
    (`respondent.age_group`, `respondent.city`) or a single-choice question's answer."""

    field: Literal["respondent.age_group", "respondent.city"] | None = None
    question: Identifier | None = None
    shares: dict[str, float] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_source(self) -> Margin:
        if (self.field is None) == (self.question is None):
            raise ValueError("a margin names either a respondent field or a question")
        if any(v < 0 for v in self.shares.values()) or sum(self.shares.values()) <= 0:
            raise _LocatedError(("shares",), "margin shares must be non-negative, not all 0")
        if abs(sum(self.shares.values()) - 1) > 0.01:
            raise _LocatedError(("shares",), "margin shares must add up to 1 (within 0.01)")
        return self

    @property
    def key(self) -> str:
        return self.field or f"question.{self.question}"


TOPIC_FIELDS = ("respondent.age_group", "respondent.province", "respondent.city")


class Topic(_Model):
    """A topic report (专题): the accepted sheets whose respondent fields or answers match every
    `where` entry (a value list each: any of them), optionally only some questions."""

    id: Identifier
    name: str = Field(min_length=1, max_length=200)
    where: dict[str, list[str]] = Field(min_length=1)
    questions: list[Identifier] | None = None


class CampaignDefinition(_Model):
    campaign: Identifier
    # What people call it (printed on QR sheets and the portal); the id when empty.
    title: str = Field(default="", max_length=200)
    timezone: str = "Asia/Shanghai"
    phases: list[Phase] = Field(min_length=1)
    work_regions: list[WorkRegion] = Field(default_factory=list)
    provinces: list[Province] = Field(default_factory=list)
    units: list[Unit] = Field(default_factory=list)
    links: list[Link] = Field(default_factory=list)
    questionnaire: Questionnaire
    visibility: Visibility = Field(default_factory=Visibility)
    # Reports (CONTRACT §10): the campaign compared with, the margins weighted to, the topics.
    previous_campaign: Identifier | None = None
    margins: list[Margin] = Field(default_factory=list)
    topics: list[Topic] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _references_resolve(self) -> CampaignDefinition:
        _unique("work_regions", "id", [r.id for r in self.work_regions])
        _unique("provinces", "id", [p.id for p in self.provinces])
        _unique("units", "id", [u.id for u in self.units])
        _unique("links", "code", [lk.code for lk in self.links])
        regions = {r.id for r in self.work_regions}
        provinces = {p.id for p in self.provinces}
        units = {u.id for u in self.units}
        for i, p in enumerate(self.provinces):
            if p.work_region not in regions:
                raise _LocatedError(
                    ("provinces", i, "work_region"),
                    f"province {p.id!r}: unknown work_region {p.work_region!r}",
                )
        for i, u in enumerate(self.units):
            if u.province not in provinces:
                raise _LocatedError(
                    ("units", i, "province"), f"unit {u.id!r}: unknown province {u.province!r}"
                )
        for i, lk in enumerate(self.links):
            if lk.unit not in units:
                raise _LocatedError(
                    ("links", i, "unit"), f"link {lk.code!r}: unknown unit {lk.unit!r}"
                )
        self._reports_resolve()
        ordered = sorted(range(len(self.phases)), key=lambda i: self.phases[i].start)
        for before, after in itertools.pairwise(ordered):
            if self.phases[after].start <= self.phases[before].end:
                raise _LocatedError(
                    ("phases", after, "start"),
                    f"phases {self.phases[before].name!r} and {self.phases[after].name!r} overlap",
                )
        return self


    def _reports_resolve(self) -> None:
        questions = {q.id: q for q in self.questionnaire.questions}
        for i, m in enumerate(self.margins):
            if m.question is not None and getattr(questions.get(m.question), "type", "") not in (
                "single", "attention"
            ):
                raise _LocatedError(("margins", i, "question"),
                                    f"margin: {m.question!r} is not a single-choice question")
        _unique("margins", "field", [m.key for m in self.margins])
        _unique("topics", "id", [t.id for t in self.topics])
        for i, t in enumerate(self.topics):
            for key in t.where:
                if key not in TOPIC_FIELDS and key not in questions:
                    raise _LocatedError(("topics", i, "where"),
                                        f"topic {t.id!r}: {key!r} is neither a respondent field"
                                        f" ({', '.join(TOPIC_FIELDS)}) nor a question")
            for qid in t.questions or []:
                if qid not in questions:
                    raise _LocatedError(("topics", i, "questions"),
                                        f"topic {t.id!r}: unknown question {qid!r}")


class _LocatedError(ValueError):
    """A cross-reference error that knows where in the file it is (a model validator's own
    location is the top level, which would name neither line nor field)."""

    def __init__(self, loc: tuple[int | str, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


def _unique(what: str, key: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for index, i in enumerate(ids):
        if i in seen:
            raise _LocatedError((what, index, key), f"{what}: id {i!r} appears twice")
        seen.add(i)


class CampaignFileError(ValueError):
    """A campaign file that cannot be used; the message names file, line, path and field."""


def _timestamp_or_text(loader: Any, node: Any) -> Any:
    """An impossible date (2023-09-31) stays text, so that validation reports it with its line
    and field instead of the YAML library raising a bare ValueError."""
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


_Loader: Any = type("_Loader", (yaml.SafeLoader,), {})
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_or_text)


def parse_campaign_text(text: str, source: str = "<input>") -> CampaignDefinition:
    """Parse YAML or JSON text into a definition, or raise CampaignFileError naming the spot."""
    try:
        data: Any = yaml.load(text, Loader=_Loader)  # a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise CampaignFileError(f"{where}: not valid YAML/JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CampaignFileError(f"{source}: expected a mapping at the top level")
    try:
        return CampaignDefinition.model_validate(data)
    except ValidationError as exc:
        raise CampaignFileError(_describe(exc, text, source)) from exc


def load_campaign_file(path: str | Path) -> CampaignDefinition:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CampaignFileError(f"{p}: cannot read: {exc}") from exc
    return parse_campaign_text(text, str(p))


def _describe(exc: ValidationError, text: str, source: str) -> str:
    lines = []
    for err in exc.errors():
        # A cross-reference check carries its own location below the model it validates.
        located = (*err["loc"], *getattr(err.get("ctx", {}).get("error"), "loc", ()))
        loc = [str(part) for part in located]
        path = ".".join(loc) if loc else "(top level)"
        field = loc[-1] if loc else "(top level)"
        line = _line_of(text, located)
        where = f"{source}:{line}" if line else source
        lines.append(f"{where}: at {path}: field {field!r}: {err['msg']}")
    return "\n".join(lines)


def _line_of(text: str, loc: tuple[int | str, ...]) -> int | None:
    """Best effort: the line where the deepest located key or list item is written."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line: int | None = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == part), None)
            key = next((k for k, _ in node.value if k.value == part), None)
            if match is None or key is None:
                continue  # not a key in the file, e.g. a union's tag ("scale"): look past it
            line, node = key.start_mark.line + 1, match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def definition_to_json(defn: CampaignDefinition) -> str:
    return json.dumps(defn.model_dump(mode="json"), ensure_ascii=False, sort_keys=True)


# What `GET /v1/campaigns/{c}` adds beside a definition (api/read_views.py), not part of it.
VIEW_ONLY_KEYS = ("as_of", "totals", "view")


def definition_from_view(body: object) -> CampaignDefinition:
    """The definition in the API's full campaign view (an admin's or analyst's), without the
    read side's own keys. A public view lacks the questionnaire and links: it fails here."""
    if isinstance(body, dict):
        if body.get("view") == "public":
            raise ValueError("the public view of the campaign has no links or questionnaire: "
                             "pass an admin or analyst token (--token)")
        body = {k: v for k, v in body.items() if k not in VIEW_ONLY_KEYS}
    return CampaignDefinition.model_validate(body)
