"""Reading events off the distributed topics: one decoder per step, shared by faust, sink, replay.

A record this build cannot read is never guessed at and never stops the pipeline: it is logged and
counted, and it stays in the log for a newer build to replay (the raw log is the source of truth).
"""

from __future__ import annotations

import logging

from schemas.events import SubmissionJudged, SubmissionReceived, UnknownEventError, decode_event
from stream_processors import metrics

log = logging.getLogger(__name__)


def position(partition: int, offset: int) -> str:
    """Where a record was read, as verdicts carry it ("partition:offset")."""
    return f"{partition}:{offset}"


def submission_key(campaign: str, submission_id: str) -> str:
    """The key everything about one submission id is kept under (the same as core.judge's)."""
    return f"{campaign}\x1f{submission_id}"


def received_key(received: SubmissionReceived) -> str:
    body = received.body
    return submission_key(str(body.get("campaign", "")), str(body.get("submission_id", "")))


def read_received(value: bytes, where: str) -> SubmissionReceived | None:
    event = _read(value, where)
    return event if isinstance(event, SubmissionReceived) else None


def read_judged(value: bytes, where: str) -> SubmissionJudged | None:
    event = _read(value, where)
    return event if isinstance(event, SubmissionJudged) else None


def _read(value: bytes, where: str) -> object:
    try:
        return decode_event(value)
    except UnknownEventError as exc:
        log.error("record at %s cannot be read: %s", where, exc)
        metrics.UNREADABLE.inc()
        return None
