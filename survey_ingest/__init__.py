"""The survey-ingest application: command line, runtime wiring, demo traffic and example campaign."""
