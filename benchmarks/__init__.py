"""Benchmarks behind ``make bench``: measured figures printed as Markdown tables (no pass/fail)."""
