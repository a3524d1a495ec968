-- The keyed hash of the client's network prefix, stored with the verdict: the anomaly
-- detectors rebuild their open windows from the stored verdicts at start (network clusters
-- included), so a restart mid-window raises what no restart would have.
ALTER TABLE submissions ADD COLUMN network String;
