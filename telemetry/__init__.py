"""Process telemetry shared by every runtime component (metrics exposition)."""
