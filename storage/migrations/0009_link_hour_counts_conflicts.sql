-- Conflicting resends counted apart from sheets (see 0008 and 0010).
ALTER TABLE link_hour_counts ADD COLUMN conflicts UInt64;
