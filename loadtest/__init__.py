"""The SRE harness: load the hub (and the bare-relay floor) and report ratios.

Entry points: ``python -m loadtest SUBCOMMAND`` and ``vestibule loadtest``
(both call :func:`loadtest.cli.main`). docs/benchmarks.md holds the figures.
"""
