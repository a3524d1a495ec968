"""The public views rendered from a read model snapshot: leaderboards, pacing, the campaign view
and the live events. Pure functions of a snapshot (its counts, registry state and as-of), so
each is rendered once per tick and every reader of that tick gets the same bytes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from api.readmodel import Snapshot
from core.counting import LEVELS, Count, Level, leaderboard
from core.pacing import METHOD, pacing
from core.registry import CampaignState


def leaderboard_content(level: Level, limit: int | None) -> Any:
    def render(snap: Snapshot) -> dict[str, Any]:
        rows = leaderboard(snap.state, snap.counts, level, limit)
        return {
            "campaign": snap.campaign, "level": level,
            # Live figures may still move (review decisions); `campaign freeze` makes the final.
            "provisional": True,
            "rows": [r.__dict__ for r in rows],
        }

    return render


def pacing_content(level: Level, limit: int | None) -> Any:
    def render(snap: Snapshot) -> dict[str, Any]:
        # "Due by now" is judged at the snapshot's as-of, so the view is one tick's truth.
        win, rows = pacing(snap.state, snap.counts, level, snap.as_of)
        selected = rows[:limit] if limit is not None else rows
        return {
            "campaign": snap.campaign, "level": level,
            "provisional": True, "method": METHOD,
            "window": {
                "first_day": win.first_day.isoformat() if win.first_day else None,
                "last_day": win.last_day.isoformat() if win.last_day else None,
                "counting_days": win.counting_days, "elapsed_days": win.elapsed_days,
                "share_due": round(win.share, 6), "timezone": snap.state.definition.timezone,
            },
            "ahead": sum(1 for r in rows if r.status == "ahead"),
            "behind": sum(1 for r in rows if r.status == "behind"),
            "rows": [r.__dict__ for r in selected],
        }

    return render


def campaign_content(snap: Snapshot) -> dict[str, Any]:
    """The public campaign view (CONTRACT §7) with the snapshot's totals (valid, rejected,
    test)."""
    out = public_view(snap.state)
    out["totals"] = snap.totals()
    return out


def full_campaign_content(snap: Snapshot) -> dict[str, Any]:
    """The whole definition (admins and analysts of the campaign) with the totals."""
    out: dict[str, Any] = snap.state.definition.model_dump(mode="json")
    out["view"] = "full"
    out["totals"] = snap.totals()
    return out


def public_view(state: CampaignState) -> dict[str, Any]:
    """What anyone may know of a campaign (CONTRACT §7)."""
    d = state.definition
    return {
        "campaign": d.campaign, "view": "public", "timezone": d.timezone,
        "phases": [p.model_dump(mode="json") for p in d.phases],
        "work_regions": [{"id": r.id, "name": r.name} for r in d.work_regions],
        "provinces": [{"id": p.id, "name": p.name, "work_region": p.work_region,
                       "target": p.target} for p in d.provinces],
        "units": [{"id": u.id, "name": u.name, "kind": u.kind, "province": u.province,
                   "target": u.planned_samples} for u in d.units],
        "visibility": d.visibility.model_dump(mode="json"),
    }


def live_event(
    snap: Snapshot, name: str, previous: Mapping[str, Count] | None = None
) -> str:
    """One SSE event: totals and all three leaderboards (and, for a change, the units that
    changed since `previous`)."""
    payload: dict[str, object] = {
        "campaign": snap.campaign,
        "as_of": snap.as_of_text,
        "provisional": True,  # live figures; the final ranking is `campaign freeze`
        "totals": snap.totals(),
    }
    if previous is not None:
        payload["changed_units"] = sorted(
            u for u in snap.counts if snap.counts[u] != previous.get(u)
        )
    payload["leaderboards"] = {
        level: [r.__dict__ for r in leaderboard(snap.state, snap.counts, level)]
        for level in LEVELS
    }
    return f"event: {name}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"
