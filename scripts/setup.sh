#!/usr/bin/env bash
# Idempotent set-up of .venv/ at the repository root: torch==2.13.0 first (the CPU build on
# local disk; a plain "torch" would pull a multi-GB CUDA build), then payoff with its test
# extras, then `pip check`. Skips the installs when pyproject.toml has not changed.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VERSION=2.13.0
PY=${PYTHON:-python3}

# `setup.sh --system` also installs the servers and browser the tests start: PostgreSQL
# (the many-workers tests) and Chromium (the report tests), from Debian's packages.
if [ "${1:-}" = "--system" ]; then
  need=()
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      echo "setup: apt-get install ${need[*]}" >&2
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    else
      echo "setup: the tests need ${need[*]}: sudo apt-get install ${need[*]}" >&2
      exit 1
    fi
  fi
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@" 2>&1 | grep -v '^WARNING: Location' || true; }

if ! .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  echo "setup: installing torch==$TORCH_VERSION" >&2
  pip install "torch==$TORCH_VERSION"
fi
stamp=.venv/.payoff-setup
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! .venv/bin/python -c "import payoff" 2>/dev/null; then
  echo "setup: installing payoff and its dependencies into .venv" >&2
  # The constraint keeps every other package from moving torch off the pinned build.
  echo "torch==$TORCH_VERSION" > .venv/torch-constraint.txt
  pip install -c .venv/torch-constraint.txt -e ".[test]"
  .venv/bin/python -m pip check
  echo "$want" > "$stamp"
fi
got=$(.venv/bin/python -c "import torch; print(torch.__version__.split('+')[0])")
[ "$got" = "$TORCH_VERSION" ] || { echo "setup: torch is $got, expected $TORCH_VERSION" >&2; exit 1; }
