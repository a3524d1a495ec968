"""Names in the distributed topology that more than the faust app needs (no faust import here)."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.settings import Settings

# The faust tables: what `assess` remembers per submission id, `settle` per device.
FINGERPRINTS_TABLE = "fingerprints"
DEVICES_TABLE = "device-first"


@dataclass(frozen=True)
class Topology:
    raw: str
    # Verdicts after `assess`, re-keyed by device so `settle_respondent` sees a device in order.
    assessed: str
    judged: str
    registry: str
    counts: str
    app_id: str  # the faust app id: its consumer group and the prefix of its changelog topics
    changelogs: tuple[str, ...]  # the tables' changelog topics, named as faust names them
    sink_group: str
    partitions: int

    @classmethod
    def of(cls, settings: Settings) -> Topology:
        topics = settings.topics
        prefix = settings.topic_prefix
        app_id = f"{prefix}-judge"
        return cls(
            raw=topics.raw,
            assessed=f"{prefix}.submissions.assessed",
            judged=topics.judged,
            registry=topics.registry,
            counts=topics.counts,
            app_id=app_id,
            changelogs=tuple(
                f"{app_id}-{table}-changelog" for table in (FINGERPRINTS_TABLE, DEVICES_TABLE)
            ),
            sink_group=f"{prefix}-sink",
            partitions=settings.raw_partitions,
        )
