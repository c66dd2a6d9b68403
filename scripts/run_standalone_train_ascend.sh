#!/usr/bin/env bash
# Train DeepSpeech2 on one Ascend device(s). Run with --help for the arguments.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
standalone_train Ascend "$@"
