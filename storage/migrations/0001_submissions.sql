-- One row per verdict. The store inserts a (campaign, submission_id, fingerprint) only once, so
-- every view fed from this table sees each verdict once; ReplacingMergeTree on the same key is
-- the safety net for anything that bypasses the store.
-- Runs on ClickHouse 18.16 and on chDB 26.x alike: no LowCardinality, no DateTime64, no JSON.
-- day and hour are in Asia/Shanghai, the campaign's (and the country's single) time zone, so
-- a "day" in regional queries is the same day the campaign's phases are defined in.
CREATE TABLE IF NOT EXISTS submissions (
    submission_id String,
    campaign String,
    fingerprint String,
    source_position String,
    received_at DateTime('UTC'),
    status String,
    reasons Array(String),
    rules_version String,
    phase String,
    link_code String,
    unit String,
    province String,
    work_region String,
    channel String,
    questionnaire_version String,
    respondent_province String,
    respondent_city String,
    age_group String,
    started_at Nullable(DateTime('UTC')),
    submitted_at Nullable(DateTime('UTC')),
    duration_seconds Float64,
    device_hash String,
    client String,
    answers_json String,
    opinion String,
    first_of_id UInt8,
    inserted_at DateTime('UTC') DEFAULT now(),
    day Date MATERIALIZED toDate(received_at, 'Asia/Shanghai'),
    hour UInt8 MATERIALIZED toHour(received_at, 'Asia/Shanghai')
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(received_at)
ORDER BY (campaign, submission_id, fingerprint);
