# The two commands of the README: `make run` and `make test`.
.PHONY: run test lint bench

run:
	scripts/bootstrap.sh
	.venv/bin/vestibule demo

test:
	scripts/test.sh

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

bench:
	scripts/bootstrap.sh --test
	.venv/bin/python -m loadtest all --write docs/benchmarks.md
