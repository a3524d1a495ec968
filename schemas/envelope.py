"""The answer sheet as posted by an answering page (CONTRACT §2): the envelope checked."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

SubmissionId = Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
MAX_BODY_BYTES = 64 * 1024
# NaN, Infinity and -Infinity are not JSON (RFC 8259) but Python's and pydantic's parsers take
# them, and a number with a huge exponent (1e400) parses as an infinity: refused at the edge,
# with their own error type, so no such value reaches the log, the judge or the store.
NON_FINITE_NUMBER = "non_finite_number"
NON_FINITE_DETAIL = (
    "numbers must be finite: NaN, Infinity, -Infinity and numbers beyond the float range "
    "(such as 1e400) are not accepted"
)
_FLOAT_MAX_BITS = 1024  # an integer longer than this is beyond the float range too


def _non_finite_at(value: Any, path: str) -> str | None:
    """The path of the first non-finite or out-of-range number in a JSON value, else None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    if isinstance(value, int):
        return path if value.bit_length() > _FLOAT_MAX_BITS else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _non_finite_at(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _non_finite_at(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def _refuse_non_finite(value: Any, path: str) -> None:
    found = _non_finite_at(value, path)
    if found is not None:
        raise PydanticCustomError(
            NON_FINITE_NUMBER, "{where}: " + NON_FINITE_DETAIL, {"where": found or "body"}
        )


class Respondent(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    province: str | None = Field(default=None, max_length=32)
    city: str | None = Field(default=None, max_length=32)
    age_group: str | None = Field(default=None, max_length=32)

    @model_validator(mode="after")
    def _finite_extras(self) -> Respondent:
        if self.model_extra:
            _refuse_non_finite(self.model_extra, "respondent")
        return self


AnswerValue = int | float | str | bool | None | list[int | float | str | bool | None]


class SubmissionEnvelope(BaseModel):
    """Envelope checks only: whether the answers fit the questionnaire is judged after the 202."""

    model_config = ConfigDict(extra="allow", frozen=True)

    submission_id: SubmissionId
    campaign: Annotated[str, Field(min_length=1, max_length=64)]
    link_code: Annotated[str, Field(min_length=1, max_length=64)]
    questionnaire_version: Annotated[str, Field(min_length=1, max_length=64)]
    started_at: AwareDatetime
    submitted_at: AwareDatetime
    respondent: Respondent = Field(default_factory=Respondent)
    device_id: Annotated[str, Field(max_length=256)] | None = None
    answers: Annotated[
        dict[Annotated[str, Field(max_length=64)], AnswerValue], Field(max_length=500)
    ]
    opinion: Annotated[str, Field(max_length=10000)] | None = None

    @field_validator("answers")
    @classmethod
    def _finite_answers(cls, answers: dict[str, Any]) -> dict[str, Any]:
        _refuse_non_finite(answers, "answers")
        return answers

    @model_validator(mode="after")
    def _finite_extras(self) -> SubmissionEnvelope:
        if self.model_extra:
            _refuse_non_finite(self.model_extra, "")
        return self


def envelope_field_errors(errors: list[Any]) -> list[dict[str, Any]]:
    """Pydantic errors reduced to what a client needs: where, what, and why."""
    return [
        {"loc": _loc(e), "type": e.get("type"), "msg": e.get("msg")}
        for e in errors
    ]


def _loc(error: Any) -> list[str]:
    # A non-finite number is found by a model validator, whose own loc is the model (empty for
    # an extra top-level field): the path it found, "respondent.score.raw[1]", is more exact.
    where = None
    if error.get("type") == NON_FINITE_NUMBER:
        where = (error.get("ctx") or {}).get("where")
    if isinstance(where, str) and where != "body":
        return re.findall(r"[^.\[\]]+", where)
    return [str(p) for p in error.get("loc", ())]


def envelope_error_detail(errors: list[Any]) -> str:
    """The `detail` of a 422 for these pydantic errors: what to fix when one reason explains it."""
    if any(e.get("type") == NON_FINITE_NUMBER for e in errors):
        return NON_FINITE_DETAIL
    return "envelope invalid"
