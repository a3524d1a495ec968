"""The distributed runtime: one module per role, plus the registry follower and topic admin."""
