-- Per question and raw answer value, counts of accepted verdicts by unit, link, channel and day
-- (province and work region follow from the unit), so an answer distribution for a region reads
-- a few rows per link and day instead of every verdict's answers_json.
-- question '' (value '') is the sheet itself: one per accepted verdict, answered or not.
-- value is the raw JSON of the answer, as storage/queries.answer_pattern extracts it; the
-- patterns below are queries.ANSWER_PAIR, ANSWER_KEY and ANSWER_PREFIX (a test checks they
-- agree). No capturing group in the pair pattern: RE2 finds whole matches several times faster.
-- Exact because the store inserts each verdict key once (see 0001), like link_hour_counts.
-- The view sums each inserted block before writing it: a few rows per link, day and answer.
CREATE TABLE IF NOT EXISTS answer_counts (
    campaign String,
    question String,
    province String,
    work_region String,
    unit String,
    link_code String,
    channel String,
    day Date,
    value String,
    n UInt64
) ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (campaign, question, province, work_region, unit, link_code, channel, day, value);

CREATE MATERIALIZED VIEW IF NOT EXISTS answer_counts_mv TO answer_counts AS
SELECT
    campaign,
    extract(pair, '^"((?:[^"\\\\]|\\\\.)*)"') AS question,
    province,
    work_region,
    unit,
    link_code,
    channel,
    day,
    replaceRegexpOne(pair, '^"(?:[^"\\\\]|\\\\.)*"\\s*:\\s*', '') AS value,
    count() AS n
FROM submissions
ARRAY JOIN arrayPushFront(extractAll(answers_json, '"(?:[^"\\\\]|\\\\.)*"\\s*:\\s*(?:"(?:[^"\\\\]|\\\\.)*"|\\[\\s*(?:"(?:[^"\\\\]|\\\\.)*"(?:\\s*,\\s*"(?:[^"\\\\]|\\\\.)*")*)?\\s*\\]|-?[0-9]+(?:\\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false|null)'), '') AS pair
WHERE status = 'accepted' AND link_code != ''
GROUP BY campaign, question, province, work_region, unit, link_code, channel, day, value;

-- What was stored before the view existed (migrations run before any writer starts); only
-- into an empty table, so running the migration again after a failure cannot count twice.
INSERT INTO answer_counts (campaign, question, province, work_region, unit, link_code, channel,
    day, value, n)
SELECT
    campaign,
    extract(pair, '^"((?:[^"\\\\]|\\\\.)*)"') AS question,
    province,
    work_region,
    unit,
    link_code,
    channel,
    day,
    replaceRegexpOne(pair, '^"(?:[^"\\\\]|\\\\.)*"\\s*:\\s*', '') AS value,
    count() AS n
FROM submissions FINAL
ARRAY JOIN arrayPushFront(extractAll(answers_json, '"(?:[^"\\\\]|\\\\.)*"\\s*:\\s*(?:"(?:[^"\\\\]|\\\\.)*"|\\[\\s*(?:"(?:[^"\\\\]|\\\\.)*"(?:\\s*,\\s*"(?:[^"\\\\]|\\\\.)*")*)?\\s*\\]|-?[0-9]+(?:\\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false|null)'), '') AS pair
WHERE status = 'accepted' AND link_code != '' AND (SELECT count() FROM answer_counts) = 0
GROUP BY campaign, question, province, work_region, unit, link_code, channel, day, value;
