"""The SRE harness and the project's benchmarks.

``run`` (loadtest.run_cli) loads a running deployment through its protocol, REST API
and /metrics, and gates a release on objectives (docs/loadtest.md). The other
subcommands start their own servers and write docs/benchmarks.md.

Entry points: ``python -m loadtest SUBCOMMAND`` and ``vestibule loadtest``
(both call :func:`loadtest.cli.main`).
"""
