"""Questionnaire-level validity rules: answers, timing and response quality. Pure functions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from core.reasons import Reason
from schemas.campaign import (
    MultiQuestion,
    Question,
    Questionnaire,
    ScaleQuestion,
    SingleQuestion,
    TextQuestion,
)


def _is_blank(value: Any) -> bool:
    return value is None or value == "" or value == []


def _answer_fits(question: Question, value: Any) -> bool:
    if isinstance(question, ScaleQuestion):
        # bool is an int in Python, but true is not a point on a scale.
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and question.min <= value <= question.max
        )
    if isinstance(question, SingleQuestion):
        return isinstance(value, str) and value in question.options
    if isinstance(question, MultiQuestion):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return False
        if len(set(value)) != len(value) or not set(value) <= set(question.options):
            return False
        return question.max_choices is None or len(value) <= question.max_choices
    if isinstance(question, TextQuestion):
        return isinstance(value, str) and len(value) <= question.max_length
    return False


def check_answers(questionnaire: Questionnaire, answers: Mapping[str, Any]) -> set[Reason]:
    reasons: set[Reason] = set()
    known = {q.id: q for q in questionnaire.questions}
    if any(qid not in known for qid in answers):
        reasons.add(Reason.INVALID_ANSWER)
        reasons.add(Reason.UNKNOWN_QUESTION)
    for q in questionnaire.questions:
        value = answers.get(q.id)
        if _is_blank(value):
            if q.required:
                reasons.add(Reason.MISSING_REQUIRED)
        elif not _answer_fits(q, value):
            reasons.add(Reason.INVALID_ANSWER)
    return reasons


def check_timing(
    questionnaire: Questionnaire, started_at: dt.datetime, submitted_at: dt.datetime
) -> set[Reason]:
    seconds = (submitted_at - started_at).total_seconds()
    if seconds < 0:
        return {Reason.INVALID_TIMESTAMPS}
    if seconds < questionnaire.min_seconds:
        return {Reason.TOO_FAST}
    return set()


def check_straight_lining(questionnaire: Questionnaire, answers: Mapping[str, Any]) -> set[Reason]:
    """The same point on every scale item, over enough items that it is unlikely to be honest."""
    values = [
        answers[q.id]
        for q in questionnaire.questions
        if isinstance(q, ScaleQuestion) and _answer_fits(q, answers.get(q.id))
    ]
    if len(values) >= questionnaire.straight_lining_min_items and len(set(values)) == 1:
        return {Reason.STRAIGHT_LINING}
    return set()
