-- The two sheet-count views sum each inserted block before writing it, as answer_counts_mv
-- (0004) always has: an insert of n verdicts adds at most one row per (unit, day) or
-- (link, hour) it touches to its count table, instead of n rows that only collapse when the
-- SummingMergeTree merges parts. At 10 M sheets the ungrouped views left unit_counts at 1.6 M
-- rows for ~1,900 keys (benchmarks/analysis.md, bench-standing), and every regional read
-- summed them all. Same counts, same rule as 0010; only the rows written differ, so nothing
-- stored is rebuilt. Migrations run before any writer starts, so no insert misses a view.

DROP TABLE IF EXISTS unit_counts_mv;
DROP TABLE IF EXISTS link_hour_counts_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS unit_counts_mv TO unit_counts AS
SELECT
    campaign,
    unit,
    province,
    work_region,
    day,
    sum(toUInt64(first_of_id = 1 AND status = 'accepted')) AS valid,
    sum(toUInt64(first_of_id = 1 AND status = 'rejected')) AS rejected,
    sum(toUInt64(first_of_id = 1 AND status = 'test')) AS test,
    sum(toUInt64(first_of_id = 0)) AS conflicts
FROM submissions
WHERE unit != ''
GROUP BY campaign, unit, province, work_region, day;

CREATE MATERIALIZED VIEW IF NOT EXISTS link_hour_counts_mv TO link_hour_counts AS
SELECT
    campaign,
    link_code,
    channel,
    unit,
    day,
    hour,
    sum(toUInt64(first_of_id = 1 AND status = 'accepted')) AS valid,
    sum(toUInt64(first_of_id = 1 AND status = 'rejected')) AS rejected,
    sum(toUInt64(first_of_id = 1 AND status = 'test')) AS test,
    sum(toUInt64(first_of_id = 0)) AS conflicts
FROM submissions
WHERE link_code != ''
GROUP BY campaign, link_code, channel, unit, day, hour;
