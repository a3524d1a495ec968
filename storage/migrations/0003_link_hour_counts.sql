-- Per link, channel and hour counts for regional and channel queries (hour in Asia/Shanghai).
CREATE TABLE IF NOT EXISTS link_hour_counts (
    campaign String,
    link_code String,
    channel String,
    unit String,
    day Date,
    hour UInt8,
    valid UInt64,
    rejected UInt64,
    test UInt64
) ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (campaign, link_code, channel, unit, day, hour);

CREATE MATERIALIZED VIEW IF NOT EXISTS link_hour_counts_mv TO link_hour_counts AS
SELECT
    campaign,
    link_code,
    channel,
    unit,
    day,
    hour,
    toUInt64(status = 'accepted') AS valid,
    toUInt64(status = 'rejected') AS rejected,
    toUInt64(status = 'test') AS test
FROM submissions
WHERE link_code != '';
