#!/usr/bin/env bash
# Installs what Vestibule needs on a fresh Debian machine, idempotently:
#   scripts/bootstrap.sh          the server (virtual environment in .venv)
#   scripts/bootstrap.sh --test   plus test tools, Chromium and redis-server
# System packages come from Debian's archive only when missing; Python packages
# are pinned by constraints.txt so every machine resolves the same versions.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

need_apt=()
if [ "$want_test" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
  command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "bootstrap: installing ${need_apt[*]} from Debian's packages"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
stamp=".venv/.installed-$want_test-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  if [ "$want_test" = 1 ]; then
    .venv/bin/pip install -q -c constraints.txt -e '.[test,loadtest]'
  else
    .venv/bin/pip install -q -c constraints.txt -e .
  fi
  rm -f .venv/.installed-*
  touch "$stamp"
fi
