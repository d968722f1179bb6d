"""Benchmarks (issue 6): see bench/README.md."""
