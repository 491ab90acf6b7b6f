"""Benchmarks. Each module runs standalone: ``python -m bench.<name> --help``."""
