"""Machine-readable reason codes (CONTRACT §5) and the rules version that produces them."""

from enum import StrEnum

# Bump when any rule's behaviour changes: judged rows carry it, so a replay shows what moved.
RULES_VERSION = "2026.2"  # 2026.2: per-item and relative speed floors, attention checks


class Reason(StrEnum):
    UNKNOWN_LINK = "unknown_link"
    REVOKED_LINK = "revoked_link"
    UNKNOWN_QUESTIONNAIRE_VERSION = "unknown_questionnaire_version"
    MISSING_REQUIRED = "missing_required"
    INVALID_ANSWER = "invalid_answer"
    UNKNOWN_QUESTION = "unknown_question"
    INVALID_TIMESTAMPS = "invalid_timestamps"
    OUTSIDE_WINDOW = "outside_window"
    DUPLICATE_SUBMISSION = "duplicate_submission"
    DUPLICATE_RESPONDENT = "duplicate_respondent"
    TOO_FAST = "too_fast"
    STRAIGHT_LINING = "straight_lining"
    TOO_FAST_PER_ITEM = "too_fast_per_item"
    TOO_FAST_RELATIVE = "too_fast_relative"
    ATTENTION_CHECK_FAILED = "attention_check_failed"
