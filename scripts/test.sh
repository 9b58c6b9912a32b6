#!/usr/bin/env bash
# The whole test suite: set up the venv, lint, format check, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
VENV="${OMUDA_VENV:-.venv}"
"$VENV/bin/ruff" check src tests scripts
"$VENV/bin/ruff" format --check src tests scripts
"$VENV/bin/python" -m pytest "$@"
