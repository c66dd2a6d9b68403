#!/usr/bin/env bash
# Data-parallel DeepSpeech2 training (msrun) on Ascend device(s). Run with --help for the arguments.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
distribute_train Ascend "$@"
