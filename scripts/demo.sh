#!/usr/bin/env bash
# Set up (idempotently) and run the demo study: `payoff demo` on shipped data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/payoff demo "$@"
