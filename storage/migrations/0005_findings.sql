-- Anomaly findings (core.anomaly): evidence for organisers, never part of any count.
-- A finding is raised again with a higher revision as its evidence grows; the latest revision
-- of a (campaign, finding_id) stands (ReplacingMergeTree on revision; queries pick it with
-- LIMIT 1 BY, so they are right before merges too). window_start never changes for a finding,
-- so all its revisions share a partition and merge.
CREATE TABLE IF NOT EXISTS findings (
    campaign String,
    finding_id String,
    revision UInt32,
    anomaly String,
    detector_version String,
    link_code String,
    unit String,
    links Array(String),
    units Array(String),
    window_start DateTime('UTC'),
    window_end DateTime('UTC'),
    raised_at DateTime('UTC'),
    score Float64,
    observed UInt64,
    evidence String,
    inserted_at DateTime('UTC') DEFAULT now()
) ENGINE = ReplacingMergeTree(revision)
PARTITION BY toYYYYMM(window_start)
ORDER BY (campaign, finding_id);
