"""What the read side needs from a runtime; the embedded and distributed runtimes both
provide it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from api.opens import OpenCounter
from core.access import ENV_ADMIN_LABEL
from core.ports import Store
from core.registry import Registry, RegistryEvent
from schemas.campaign import CampaignDefinition
from schemas.settings import Settings


async def _no_registry_writes(event: RegistryEvent) -> None:
    raise NotImplementedError("this runtime does not publish registry events")


@dataclass
class Services:
    registry: Registry
    store: Store
    admin_token: str
    # Publishes a definition as a registry event and returns once it is in force here.
    define_campaign: Callable[[CampaignDefinition], Awaitable[None]]
    ready: Callable[[], bool]
    # Whether a submission was taken by the log but has no verdict yet (best effort).
    is_pending: Callable[[str, str], bool] = lambda campaign, submission_id: False
    live_interval_s: float = 1.0
    # Appends a registry event (a review decision, a median) and returns once it is in force
    # here; the caller then applies a decision to the store (api/review.py).
    publish_registry: Callable[[RegistryEvent], Awaitable[None]] = _no_registry_writes
    # Signs session cookies (api/auth.py); the same on every instance of a deployment.
    session_key: str = "survey-ingest-development-key"
    # Failed authentications per client per minute before 429.
    auth_failures_per_minute: int = 30
    # Session cookies carry `Secure` (the public URL is https).
    secure_cookies: bool = False
    extra: dict[str, object] = field(default_factory=dict)
    # Answering-page loads per link (api/opens.py); a runtime gives it a sink and runs its
    # flush task. Without one, loads are tallied in memory only.
    opens: OpenCounter | None = None
    # Public address of the answering pages, for link URLs and QR codes ("" = the request's).
    public_base_url: str = ""
    # Whom SURVEY_ADMIN_TOKEN stands for on the audit trail (the CLI in process: its operator).
    admin_label: str = ENV_ADMIN_LABEL

    def __post_init__(self) -> None:
        if self.opens is None:
            self.opens = OpenCounter(self.registry)

    @property
    def open_counter(self) -> OpenCounter:
        assert self.opens is not None  # set in __post_init__
        return self.opens


def access_settings(settings: Settings) -> dict[str, Any]:
    """The Services fields that configure access, from Settings (both runtimes use this)."""
    return {
        "admin_token": settings.admin_token,
        "session_key": settings.session_key or "session:" + settings.hash_key,
        "auth_failures_per_minute": settings.auth_failures_per_minute,
        "secure_cookies": settings.public_base_url.lower().startswith("https://"),
    }
