"""What a generated sheet can be wrong with: the flaw kinds, the reason code each is aimed at
(CONTRACT §5), and how the flawed share splits between them by default."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal, TypeAlias, get_args

FlawKind: TypeAlias = Literal[
    "too_fast",
    "missing_required",
    "invalid_answer",
    "straight_lining",
    "unknown_link",
    "revoked_link",
    "reused_device",
    "identical_resend",
    "conflicting_resend",
]
FLAW_KINDS: Final[tuple[FlawKind, ...]] = get_args(FlawKind)

# The reason code each flaw is meant to draw from the judge; an identical resend draws none
# (it is absorbed and counted once).
FLAW_REASONS: Final[Mapping[FlawKind, str | None]] = {
    "too_fast": "too_fast",
    "missing_required": "missing_required",
    "invalid_answer": "invalid_answer",
    "straight_lining": "straight_lining",
    "unknown_link": "unknown_link",
    "revoked_link": "revoked_link",
    "reused_device": "duplicate_respondent",
    "identical_resend": None,
    "conflicting_resend": "duplicate_submission",
}

# How the flawed share splits between kinds (relative weights). Hurried respondents and page
# retries are the common flaws in real traffic; conflicting resends are rare.
DEFAULT_FLAW_WEIGHTS: Final[Mapping[FlawKind, float]] = {
    "too_fast": 0.25,
    "straight_lining": 0.15,
    "reused_device": 0.12,
    "identical_resend": 0.12,
    "unknown_link": 0.10,
    "missing_required": 0.08,
    "invalid_answer": 0.08,
    "revoked_link": 0.05,
    "conflicting_resend": 0.05,
}

# Flaws that refer to an earlier sheet of the stream (none exists for the first one).
NEEDS_HISTORY: Final[frozenset[FlawKind]] = frozenset(
    {"reused_device", "identical_resend", "conflicting_resend"}
)
