"""Benchmarks of openice, each run from the repository root as `python -m bench.NAME` (see bench/README.md).

A package so the benchmarks share `bench.machine` and each other's setup, and so tests can use the pandas
baseline (`bench.pandas_baseline`) as an independent check on the SQL metrics.
"""
