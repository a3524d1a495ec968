"""Proposed changes to code outside benchmarks/, as drop-in subclasses or adapters, so that the
benchmarks can measure each one beside the code as it is, in the same run (see analysis.md)."""
