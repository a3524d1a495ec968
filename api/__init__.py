"""The read side: submission status, leaderboards, live counts, admin, health and metrics."""
