"""Benchmarks: each prints its ratio against a bare baseline measured in the same run."""
