-- Review decisions (core/review.py): one row per (sheet, decision covering it). A sheet's
-- reviewed status is that of its row with the greatest order_key (the latest decision); counts
-- add, per sheet whose reviewed status differs from judged_status, the move between valid and
-- rejected. Rows are a pure function of (decision, verdict): applying a decision again writes
-- the same rows, which the store skips (and ReplacingMergeTree would fold), and argMax over
-- order_key does not care in which order or how often they arrived.
CREATE TABLE IF NOT EXISTS review_overrides (
    campaign String,
    submission_id String,
    decision_id String,
    order_key String,
    status String,
    judged_status String,
    unit String,
    province String,
    work_region String,
    inserted_at DateTime('UTC') DEFAULT now()
) ENGINE = ReplacingMergeTree()
ORDER BY (campaign, submission_id, decision_id);
