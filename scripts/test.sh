#!/usr/bin/env bash
# The whole test suite: set up the venv, lint, format check, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
VENV="${OMUDA_VENV:-.venv}"
# The report's browser check needs Chromium (Debian's chromium package): installed when
# missing and apt-get is usable (root, non-interactive), otherwise that test is skipped.
have_chromium() {
  [ -n "${OMUDA_CHROMIUM:-}" ] || command -v chromium || command -v chromium-browser \
    || command -v google-chrome
} >/dev/null 2>&1
if ! have_chromium && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium for the report's browser check (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } \
    || true
fi
if ! have_chromium; then
  echo "chromium not found and not installable here: the report's browser check is skipped"
fi
"$VENV/bin/ruff" check src tests scripts
"$VENV/bin/ruff" format --check src tests scripts
"$VENV/bin/python" -m pytest "$@"
