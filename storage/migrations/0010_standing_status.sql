-- The standing status of a sheet (CONTRACT §6; storage/standing.py is the one definition):
-- the status of its first verdict, or of the latest review decision covering it.
--
-- 1. Count tables count sheets, not attempts: only a sheet's first verdict (first_of_id = 1)
--    adds to valid, rejected or test; a conflicting resend (same id, other content, reason
--    duplicate_submission, first_of_id = 0) adds to `conflicts` instead, so it stays countable
--    as evidence without being a second sheet. The views are recreated with that rule and the
--    two tables (their `conflicts` columns added by 0008 and 0009) rebuilt from the stored verdicts (migrations run before any writer starts;
--    TRUNCATE first, so running this migration again after a failure cannot count twice).
-- 2. review_sheets replaces review_overrides as what the read paths correct the counts with:
--    one row per (sheet, decision covering it), carrying every column a count table groups or
--    filters by, and the sheet's answers (so answer_counts can be corrected without reading
--    the verdicts). Count tables keep the judged counts of first verdicts; every read adds,
--    per sheet whose latest decision differs from its judged status, the move between valid
--    and rejected. That is at most one row per reviewed sheet (100,000 at the scale aimed at),
--    read by primary key prefix (campaign), grouped by submission_id.

DROP TABLE IF EXISTS unit_counts_mv;
DROP TABLE IF EXISTS link_hour_counts_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS unit_counts_mv TO unit_counts AS
SELECT
    campaign,
    unit,
    province,
    work_region,
    day,
    toUInt64(first_of_id = 1 AND status = 'accepted') AS valid,
    toUInt64(first_of_id = 1 AND status = 'rejected') AS rejected,
    toUInt64(first_of_id = 1 AND status = 'test') AS test,
    toUInt64(first_of_id = 0) AS conflicts
FROM submissions
WHERE unit != '';

CREATE MATERIALIZED VIEW IF NOT EXISTS link_hour_counts_mv TO link_hour_counts AS
SELECT
    campaign,
    link_code,
    channel,
    unit,
    day,
    hour,
    toUInt64(first_of_id = 1 AND status = 'accepted') AS valid,
    toUInt64(first_of_id = 1 AND status = 'rejected') AS rejected,
    toUInt64(first_of_id = 1 AND status = 'test') AS test,
    toUInt64(first_of_id = 0) AS conflicts
FROM submissions
WHERE link_code != '';

TRUNCATE TABLE unit_counts;

INSERT INTO unit_counts (campaign, unit, province, work_region, day, valid, rejected, test,
    conflicts)
SELECT campaign, unit, province, work_region, day,
    countIf(first_of_id = 1 AND status = 'accepted'),
    countIf(first_of_id = 1 AND status = 'rejected'),
    countIf(first_of_id = 1 AND status = 'test'),
    countIf(first_of_id = 0)
FROM submissions FINAL
WHERE unit != ''
GROUP BY campaign, unit, province, work_region, day;

TRUNCATE TABLE link_hour_counts;

INSERT INTO link_hour_counts (campaign, link_code, channel, unit, day, hour, valid, rejected,
    test, conflicts)
SELECT campaign, link_code, channel, unit, day, hour,
    countIf(first_of_id = 1 AND status = 'accepted'),
    countIf(first_of_id = 1 AND status = 'rejected'),
    countIf(first_of_id = 1 AND status = 'test'),
    countIf(first_of_id = 0)
FROM submissions FINAL
WHERE link_code != ''
GROUP BY campaign, link_code, channel, unit, day, hour;

CREATE TABLE IF NOT EXISTS review_sheets (
    campaign String,
    submission_id String,
    decision_id String,
    order_key String,
    status String,
    judged_status String,
    unit String,
    province String,
    work_region String,
    link_code String,
    channel String,
    received_at DateTime('UTC'),
    answers_json String,
    inserted_at DateTime('UTC') DEFAULT now(),
    day Date MATERIALIZED toDate(received_at, 'Asia/Shanghai'),
    hour UInt8 MATERIALIZED toHour(received_at, 'Asia/Shanghai')
) ENGINE = ReplacingMergeTree()
ORDER BY (campaign, submission_id, decision_id);

-- The decisions applied before this migration, with the columns review_overrides lacked.
INSERT INTO review_sheets (campaign, submission_id, decision_id, order_key, status,
    judged_status, unit, province, work_region, link_code, channel, received_at, answers_json)
SELECT campaign, submission_id, decision_id, order_key, status, judged_status, unit, province,
    work_region, s_link_code, s_channel, s_received_at, s_answers_json
FROM review_overrides ANY INNER JOIN (
    SELECT campaign, submission_id, link_code AS s_link_code, channel AS s_channel,
        received_at AS s_received_at, answers_json AS s_answers_json
    FROM submissions WHERE first_of_id = 1
) AS s USING (campaign, submission_id)
WHERE (SELECT count() FROM review_sheets) = 0;
