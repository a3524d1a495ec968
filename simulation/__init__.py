"""Generated traffic for the demo, benchmarks and tests: honest sheets and padding scenarios.

Nothing in production imports this package (import-linter keeps it so); `survey-ingest demo`
is the one command that does, to have something to show.
"""

from pathlib import Path

EXAMPLE_CAMPAIGN = Path(__file__).parent / "examples" / "campaign.yaml"
