"""The roles a token can carry (CONTRACT §7)."""

from __future__ import annotations

from enum import StrEnum

# A token bound to every campaign (only `admin` and `monitor` may be) names this campaign.
ALL_CAMPAIGNS = "*"


class Role(StrEnum):
    unit = "unit"  # one unit of one campaign
    coordinator = "coordinator"  # one work region of one campaign
    analyst = "analyst"  # one whole campaign, read only
    admin = "admin"  # everything (one campaign, or all)
    monitor = "monitor"  # /metrics only


# Roles that may be bound to all campaigns at once.
GLOBAL_ROLES = frozenset({Role.admin, Role.monitor})
