#!/usr/bin/env bash
# Shared by the launchers: environment, absolute paths, logged runs. Source it; don't run it.
# shellcheck source=setup_env.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/setup_env.sh"

# abspath PATH: absolute form of a path given relative to the caller's working directory.
abspath() { case "$1" in /*) echo "$1" ;; "") echo "" ;; *) echo "$PWD/$1" ;; esac; }

# run_logged LOGFILE CMD...: run in the foreground, output to the console and appended to LOGFILE.
run_logged() {
  local logfile="$1"; shift
  mkdir -p "$(dirname "$logfile")"
  echo "[$(date '+%F %T')] $*" | tee -a "$logfile"
  "$@" 2>&1 | tee -a "$logfile"
  return "${PIPESTATUS[0]}"
}

# require_file PATH WHAT: fail with a clear message when an input file is missing.
require_file() {
  if [ ! -f "$1" ]; then echo "ERROR: $2 not found: $1" >&2; exit 2; fi
}
