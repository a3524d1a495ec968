"""The final ranking: a snapshot of a campaign's leaderboards with a hash over its content.

The content holds nothing that depends on when or where it was made (no wall-clock time, no
host), only what the log determines: counts after review decisions, the rules versions the
verdicts were judged by, the decisions applied and the definition in force. So freezing again
after a replay of the same log yields the same bytes and the same hash; `frozen_at` sits beside
the content, outside the hash.

Canonical serialisation: JSON, keys sorted, no insignificant whitespace, UTF-8 (not ASCII
escapes); numbers as Python writes them (counts are integers, progress rounded to 6 places).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from core.counting import LEVELS, Count, leaderboard
from core.reasons import RULES_VERSION
from core.registry import CampaignState
from core.review import order_key

FORMAT = 1


def canonical(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def content_hash(content: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(content)).hexdigest()


def final_content(
    state: CampaignState, unit_counts: Mapping[str, Count], rules_versions: Iterable[str]
) -> dict[str, Any]:
    defn = state.definition
    decisions = sorted(state.reviews, key=order_key)
    return {
        "format": FORMAT,
        "campaign": defn.campaign,
        "provisional": False,
        # Every rules version a counted verdict was judged by, and the build's own.
        "rules_versions": sorted(set(rules_versions)),
        "rules_version_of_build": RULES_VERSION,
        "definition_sha256": content_hash(defn.model_dump(mode="json")),
        "questionnaire_versions": sorted(state.questionnaires),
        "review_decisions": [d.decision_id for d in decisions],
        "totals": {
            "valid": sum(c.valid for c in unit_counts.values()),
            "rejected": sum(c.rejected for c in unit_counts.values()),
            "test": sum(c.test for c in unit_counts.values()),
        },
        "leaderboards": {
            level: [row.__dict__ for row in leaderboard(state, unit_counts, level)]
            for level in LEVELS
        },
    }


def snapshot(content: Mapping[str, Any], frozen_at: dt.datetime) -> dict[str, Any]:
    return {
        "content": dict(content),
        "sha256": content_hash(content),
        "hash_of": "sha256 over the canonical JSON of `content` (sorted keys, no whitespace,"
        " UTF-8)",
        "frozen_at": frozen_at.isoformat(),
    }


def verify(snap: Mapping[str, Any]) -> bool:
    """Whether a snapshot's hash matches its content (e.g. one read back from a file)."""
    content = snap.get("content")
    return isinstance(content, dict) and content_hash(content) == snap.get("sha256")
