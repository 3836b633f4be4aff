#!/usr/bin/env bash
# The whole suite: lint, types, then every test layer (unit, service,
# multinode with real Redis, browser with real Chromium). Extra arguments go
# to pytest, e.g. scripts/test.sh tests/unit -x
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff"; ruff check .
echo "== ruff format"; ruff format --check . || { echo "run: .venv/bin/ruff format ."; exit 1; }
echo "== mypy --strict"; mypy
echo "== pytest"; pytest "$@"
