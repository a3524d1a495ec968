"""The survey-ingest application: command line, runtime wiring, demo traffic, example campaign."""
