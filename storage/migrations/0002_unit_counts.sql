-- Per unit and day counts, summed by the engine on merge; read with sum() ... GROUP BY.
-- Exact because the store never inserts a verdict twice into submissions (see 0001).
CREATE TABLE IF NOT EXISTS unit_counts (
    campaign String,
    unit String,
    province String,
    work_region String,
    day Date,
    valid UInt64,
    rejected UInt64,
    test UInt64
) ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (campaign, unit, province, work_region, day);

-- A view only sees inserts made after it exists: migrations run before any writer starts.
CREATE MATERIALIZED VIEW IF NOT EXISTS unit_counts_mv TO unit_counts AS
SELECT
    campaign,
    unit,
    province,
    work_region,
    day,
    toUInt64(status = 'accepted') AS valid,
    toUInt64(status = 'rejected') AS rejected,
    toUInt64(status = 'test') AS test
FROM submissions
WHERE unit != '';
