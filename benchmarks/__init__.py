"""Benchmarks of the provider and the reference server (run with ``make bench``).

Scripts, not tests: each prints its figures and, per measure, a last line
``RATIO <name> <value>`` comparing things measured side by side in the same run.
"""
