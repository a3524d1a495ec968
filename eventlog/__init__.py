"""Durable logs for the embedded runtime: the segment-file log and its consumer offsets."""

from eventlog.file_log import (
    FileLog,
    FileLogStats,
    LogCorruptionError,
    LogInUseError,
    Record,
)
from eventlog.offsets import OffsetStore, OffsetStoreError

__all__ = [
    "FileLog",
    "FileLogStats",
    "LogCorruptionError",
    "LogInUseError",
    "OffsetStore",
    "OffsetStoreError",
    "Record",
]
