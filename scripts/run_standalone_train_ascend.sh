#!/usr/bin/env bash
# Train DeepSpeech2 on one Ascend device.
set -euo pipefail
usage="Usage: bash scripts/run_standalone_train_ascend.sh [DEVICE_ID] [PRETRAINED_CKPT] [section.key=value ...]
  PRETRAINED_CKPT  initial weights (ours or the model zoo's DeepSpeech.ckpt); '' or omitted = from scratch
  env CONFIG       YAML config (default: configs/ascend.yaml); LOG: log file (default ./train.log)"
[ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ] && { echo "$usage"; exit 0; }
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO_ROOT/scripts/lib.sh"
DEVICE_ID="${1:-0}"; shift $(( $# > 0 ? 1 : 0 ))
[[ "$DEVICE_ID" =~ ^[0-9]+$ ]] || { echo "ERROR: DEVICE_ID must be a number, got '$DEVICE_ID'" >&2; echo "$usage" >&2; exit 2; }
CKPT="$(abspath "${1:-}")"; shift $(( $# > 0 ? 1 : 0 ))
CONFIG="$(abspath "${CONFIG:-$REPO_ROOT/configs/ascend.yaml}")"; LOG="$(abspath "${LOG:-train.log}")"
require_file "$CONFIG" "config"
[ -z "$CKPT" ] || require_file "$CKPT" "pretrained checkpoint"
cd "$REPO_ROOT"
run_logged "$LOG" python train.py --config "$CONFIG" --device_target Ascend --device_id "$DEVICE_ID" \
  ${CKPT:+--pre_trained_model_path "$CKPT"} "$@"
