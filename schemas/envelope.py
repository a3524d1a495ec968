"""The answer sheet as posted by an answering page (CONTRACT §2): the envelope checked."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SubmissionId = Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
MAX_BODY_BYTES = 64 * 1024


class Respondent(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    province: str | None = Field(default=None, max_length=32)
    city: str | None = Field(default=None, max_length=32)
    age_group: str | None = Field(default=None, max_length=32)


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


def envelope_field_errors(errors: list[Any]) -> list[dict[str, Any]]:
    """Pydantic errors reduced to what a client needs: where, what, and why."""
    return [
        {"loc": [str(p) for p in e.get("loc", ())], "type": e.get("type"), "msg": e.get("msg")}
        for e in errors
    ]
