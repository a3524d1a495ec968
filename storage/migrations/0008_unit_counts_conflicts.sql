-- Conflicting resends (first_of_id = 0) are counted apart from sheets: see 0010. One statement
-- per migration: 18.16 has no ADD COLUMN IF NOT EXISTS, so a migration re-run after a failure
-- must not meet a column it already added.
ALTER TABLE unit_counts ADD COLUMN conflicts UInt64;
