"""Reproducible load and latency measurements; `make bench` runs them all."""
