"""The one way to open a campaign registry outside a running process: from an embedded data
dir, from the Kafka registry topic, or from a campaign file (commands and reports use this)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from core.registry import Registry
from eventlog.file_log import FileLog, LogInUseError
from schemas.campaign import load_campaign_file
from schemas.events import (
    AdminAudited,
    CampaignDefined,
    DurationMedianSet,
    LinkIssued,
    LinkRevoked,
    ReviewDecided,
    TokenIssued,
    TokenRevoked,
    decode_event,
)
from schemas.settings import Settings

REGISTRY_EVENTS = (
    CampaignDefined, LinkIssued, LinkRevoked, DurationMedianSet, ReviewDecided, TokenIssued,
    TokenRevoked, AdminAudited,
)


class RegistryUnavailable(Exception):
    """The registry cannot be read as asked; one line for the user."""


def fold_log(registry_log: FileLog, registry: Registry) -> int:
    """Fold the whole embedded registry log, in order; returns how many events were applied."""
    n, position = 0, 0
    while records := registry_log.read(position, 1000):
        for record in records:
            event = decode_event(record.value)
            if isinstance(event, REGISTRY_EVENTS):
                registry.apply(event)
                n += 1
        position = records[-1].offset + 1
    return n


def from_data_dir(data_dir: Path) -> Registry:
    """The registry of a stopped embedded instance (chDB and the logs are one process's)."""
    path = Path(data_dir).resolve() / "registry"
    if not path.is_dir():
        raise RegistryUnavailable(f"no embedded registry at {path} (wrong --data-dir?)")
    try:
        registry_log = FileLog(path, fsync=False)
    except LogInUseError as exc:
        raise RegistryUnavailable(
            f"{exc}: stop the running instance, or ask it over --url") from exc
    registry = Registry()
    try:
        fold_log(registry_log, registry)
    finally:
        registry_log.close()
    return registry


def from_topic(settings: Settings, timeout_s: float = 60.0) -> Registry:
    """The registry as it stands now on Kafka (the whole registry topic, folded once)."""
    from runtime.distributed.registry import RegistryFollower
    from stream_processors.faust_topology import Topology

    follower = RegistryFollower(settings.kafka_bootstrap, Topology.of(settings).registry).start()
    try:
        if not follower.wait_ready(timeout_s):
            raise RegistryUnavailable(f"registry topic not readable within {timeout_s:.0f} s")
        return follower.registry
    finally:
        follower.stop()


def from_campaign_file(path: Path) -> Registry:
    """A registry holding one campaign file's definition, as if loaded at the epoch."""
    definition = load_campaign_file(path)
    registry = Registry()
    registry.apply(CampaignDefined(
        campaign=definition.campaign, defined_at=dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
        definition=definition))
    return registry
