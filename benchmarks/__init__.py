"""headrace benchmarks: copy throughput and engine overhead against native tools, in one run.

Run ``python -m benchmarks --help``; results and the chosen defaults are in ``README.md``.
"""
