"""Statistical reports of a campaign or one of its regions, built from the store (issue 9)."""

from reports.eligibility import ELIGIBILITY_THRESHOLD, eligible_regions

__all__ = ["ELIGIBILITY_THRESHOLD", "eligible_regions"]
