"""The command line: `survey-ingest` and one module per verb group."""
