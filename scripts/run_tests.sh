#!/usr/bin/env bash
# Set up the environment (virtualenv, package, system packages) and run the test suite.
# Usage: bash scripts/run_tests.sh [pytest args...]   e.g. -m "not slow", tests/test_config.py
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DS2_TEST_BROWSER=1                  # Chromium + ChromeDriver for the web page tests
# shellcheck source=setup_env.sh
source "$REPO_ROOT/scripts/setup_env.sh"
cd "$REPO_ROOT"
exec python -m pytest tests -q -ra "$@"
