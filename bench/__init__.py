"""Benchmarks, each runnable as ``python bench/NAME.py``; not part of the installed package."""
