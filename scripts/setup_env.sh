#!/usr/bin/env bash
# Create or reuse the project virtualenv, install the package and its system packages.
# Usage: bash scripts/setup_env.sh            (standalone)
#        source scripts/setup_env.sh          (from another script: leaves the venv active)
# Environment: DS2_VENV (default <repo>/.venv), DS2_PYTHON (default python3.11 or python3),
#              DS2_TEST_BROWSER=1 (also Chromium + ChromeDriver for the page tests; run_tests.sh sets it).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DS2_VENV:-$REPO_ROOT/.venv}"
APT_PACKAGES=(espeak-ng flite sox)        # speech engines for the offline corpus; sox for checks
APT_BINARIES=(espeak-ng flite sox)
if [ "${DS2_TEST_BROWSER:-0}" = 1 ]; then # the test path (run_tests.sh): the web page in headless Chromium
  APT_PACKAGES+=(chromium chromium-driver)
  APT_BINARIES+=(chromium chromedriver)
fi

ds2_log() { echo "[setup $(date +%H:%M:%S)] $*" >&2; }

ds2_install_system_packages() {
  local missing=() i
  for i in "${!APT_BINARIES[@]}"; do
    command -v "${APT_BINARIES[$i]}" >/dev/null 2>&1 || missing+=("${APT_PACKAGES[$i]}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    ds2_log "installing system packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "ERROR: missing system packages: ${missing[*]}" >&2
    echo "       install them with: sudo apt-get install ${missing[*]}" >&2
    return 1
  fi
}

ds2_find_python() {
  local candidate
  for candidate in "${DS2_PYTHON:-}" python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 && \
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; then
      echo "$candidate"; return 0
    fi
  done
  echo "ERROR: Python 3.11 is required (mindspore 2.10.0 ships cp311 wheels); set DS2_PYTHON" >&2
  return 1
}

ds2_setup_venv() {
  local python stamp want
  if [ ! -x "$VENV/bin/python" ]; then
    python="$(ds2_find_python)"
    ds2_log "creating virtualenv $VENV"
    "$python" -m venv "$VENV"
  fi
  # Reinstall only when the package definition changed (idempotent and fast on re-runs). --no-compile: pip
  # would byte-compile all of mindspore's modules (~16 s of a 53-s install, EPYC); Python compiles the few
  # each command imports on first use instead (import time unchanged: 5.5 s first, 4.9 s after).
  stamp="$VENV/.ds2-install-stamp"
  want="$(cat "$REPO_ROOT/setup.py" | sha256sum | cut -d' ' -f1) $REPO_ROOT"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    ds2_log "installing the package and its requirements into $VENV (first time: ~1 GB download)"
    if ! { "$VENV/bin/python" -m pip install -q --upgrade pip && \
           "$VENV/bin/python" -m pip install -q --no-compile -e "$REPO_ROOT[test]"; } > "$VENV/install.log" 2>&1; then
      tail -n 40 "$VENV/install.log" >&2
      echo "ERROR: pip install failed (full log: $VENV/install.log)" >&2
      return 1
    fi
    echo "$want" > "$stamp"
  fi
}

ds2_install_system_packages
ds2_setup_venv
export PATH="$VENV/bin:$PATH"
export VIRTUAL_ENV="$VENV"
export PYTHONUNBUFFERED=1
export GLOG_v="${GLOG_v:-3}"              # MindSpore C++ logs: errors only
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  ds2_log "environment ready: $VENV ($("$VENV/bin/python" --version))"
fi
