-- The accepted verdict of each device, ordered by device: what the embedded processor looks up to
-- decide duplicate_respondent without keeping every device in memory (core/judge_memory.py).
-- Judging accepts at most one verdict per (campaign, device_hash); ReplacingMergeTree collapses
-- the same verdict stored twice by anything that bypasses the store. Small granules: lookups
-- read a few dozen devices at a time, each one granule.
CREATE TABLE IF NOT EXISTS device_firsts (
    campaign String,
    device_hash String,
    submission_id String
) ENGINE = ReplacingMergeTree()
ORDER BY (campaign, device_hash)
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS device_firsts_mv TO device_firsts AS
SELECT campaign, device_hash, submission_id
FROM submissions
WHERE status = 'accepted' AND device_hash != '';

INSERT INTO device_firsts (campaign, device_hash, submission_id)
SELECT campaign, device_hash, submission_id
FROM submissions FINAL
WHERE status = 'accepted' AND device_hash != '' AND (SELECT count() FROM device_firsts) = 0;
