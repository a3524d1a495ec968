"""The collector edge: envelope checks and a durable append to the raw log, nothing more."""
