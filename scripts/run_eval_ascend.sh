#!/usr/bin/env bash
# Evaluate WER/CER of a checkpoint on one Ascend device(s). Run with --help for the arguments.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
evaluate Ascend "$@"
