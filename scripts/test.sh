#!/usr/bin/env bash
# Set up (idempotently), lint, and run the whole test suite, slow tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --system
.venv/bin/ruff check src tests benchmarks
exec .venv/bin/python -m pytest "$@"
