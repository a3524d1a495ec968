"""All configuration in one object, read from SURVEY_* environment variables and CLI flags."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SURVEY_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("./data")
    # Empty token: the admin endpoint refuses every request (401) rather than being open.
    admin_token: str = ""
    # Key for the keyed hashes of client addresses and device ids; set it in production.
    hash_key: str = "survey-ingest-development-key"
    public_base_url: str = "http://127.0.0.1:8080"
    # Session key: signs the pages' session cookies (api/auth.py); empty: derived from hash_key.
    session_key: str = ""
    cors_origins: list[str] = Field(default_factory=list)
    trusted_proxies: list[str] = Field(default_factory=list)

    kafka_bootstrap: str = "127.0.0.1:9092"
    clickhouse_url: str = "clickhouse://127.0.0.1:9000/survey"
    topic_prefix: str = "survey"
    raw_partitions: int = 8

    # Failed authentications a client may make per minute before it is answered 429; 0 = off.
    auth_failures_per_minute: int = 30
    rate_limit_per_ip: float = 0.0  # requests/s per client address; 0 = off
    rate_limit_per_link: float = 0.0  # requests/s per link code; 0 = off
    max_in_flight: int = 4096  # concurrent submissions awaiting the log before shedding with 503
    # On SIGTERM a collector answers /readyz 503 for this long while still taking sheets, so a
    # load balancer stops sending before it closes; then requests in flight finish.
    drain_seconds: float = 5.0

    # Where the worker's faust tables live: "rocksdb://" (on disk under the data dir, memory
    # bounded by stream_processors.faust_app's RocksDB options) or "memory://" (rebuilt from
    # the changelogs at every start; grows with the campaign).
    table_store: str = "rocksdb://"

    sink_batch_rows: int = 5000
    sink_batch_seconds: float = 0.5
    log_fsync: bool = True
    # Embedded judging memory: Bloom filters sized for this many sheets (2 x 1.2 MB per million
    # at 1% false positives); past it, more store lookups, same verdicts (core/judge_memory.py).
    judge_memory_capacity: int = 12_000_000
    # How often a serving process moves its tally of answering-page loads into the store
    # (api/opens.py); a crash loses at most this long's loads of that process.
    opens_flush_seconds: float = Field(default=5.0, gt=0, le=3600)
    # The long commands' progress display on stderr (commands/progress.py): "auto" when stderr
    # is a terminal, "always" (also when piped), "never".
    progress: Literal["auto", "always", "never"] = "auto"

    @property
    def topics(self) -> Topics:
        return Topics(prefix=self.topic_prefix)


class Topics:
    def __init__(self, prefix: str) -> None:
        self.raw = f"{prefix}.submissions.raw"
        self.judged = f"{prefix}.submissions.judged"
        self.registry = f"{prefix}.registry"
        self.counts = f"{prefix}.counts"
