"""Benchmarks (``make bench``); a package so that workers can import its settings."""
