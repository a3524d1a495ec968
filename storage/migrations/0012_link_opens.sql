-- Answering-page loads per link and day (CONTRACT §8 `opens`): counted, never logged per view,
-- no address kept. Each serving process adds its in-memory tally here every few seconds
-- (api/opens.py); SummingMergeTree folds the rows of many processes and flushes into one per
-- key, and every read sums, so rows not merged yet still count once each.
CREATE TABLE IF NOT EXISTS link_opens (
    campaign String,
    link_code String,
    unit String,
    channel String,
    day Date,
    opens UInt64
) ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (campaign, link_code, unit, channel, day);
