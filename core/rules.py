"""Questionnaire-level validity rules: answers, timing and response quality. Pure functions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from core.reasons import Reason
from schemas.campaign import (
    AttentionQuestion,
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
    if isinstance(question, AttentionQuestion):
        return isinstance(value, str) and value in question.options
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


def answered_items(questionnaire: Questionnaire, answers: Mapping[str, Any]) -> int:
    return sum(1 for q in questionnaire.questions if not _is_blank(answers.get(q.id)))


def check_timing(
    questionnaire: Questionnaire,
    started_at: dt.datetime,
    submitted_at: dt.datetime,
    answers: Mapping[str, Any] | None = None,
    median_seconds: float | None = None,
) -> set[Reason]:
    """The speed floors, each its own reason: `min_seconds` (too_fast), `min_seconds_per_item`
    times the answered questions (too_fast_per_item), and `relative_min_fraction` of the median
    completion time in force for the version (too_fast_relative; None: no median in force yet).

    Which median: the latest DurationMedianSet on the registry log whose effective_at is at or
    before the sheet's receive time (CampaignState.median_at). It is published, not computed
    here, so a replay in either runtime, in any order, judges against the same number.
    """
    seconds = (submitted_at - started_at).total_seconds()
    if seconds < 0:
        return {Reason.INVALID_TIMESTAMPS}
    reasons: set[Reason] = set()
    if seconds < questionnaire.min_seconds:
        reasons.add(Reason.TOO_FAST)
    if answers is not None and questionnaire.min_seconds_per_item > 0:
        floor = questionnaire.min_seconds_per_item * answered_items(questionnaire, answers)
        if seconds < floor:
            reasons.add(Reason.TOO_FAST_PER_ITEM)
    fraction = questionnaire.relative_min_fraction
    if median_seconds is not None and fraction > 0 and seconds < fraction * median_seconds:
        reasons.add(Reason.TOO_FAST_RELATIVE)
    return reasons


def check_attention(questionnaire: Questionnaire, answers: Mapping[str, Any]) -> set[Reason]:
    """An instructed-answer item answered otherwise, or left blank: the instruction was not read."""
    for q in questionnaire.questions:
        if isinstance(q, AttentionQuestion) and answers.get(q.id) != q.expected:
            return {Reason.ATTENTION_CHECK_FAILED}
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
