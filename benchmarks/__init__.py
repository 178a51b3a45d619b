"""Benchmarks of the server's hot paths; `make bench` runs them and writes docs/benchmarks.md."""
