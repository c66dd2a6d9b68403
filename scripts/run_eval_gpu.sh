#!/usr/bin/env bash
# Evaluate WER/CER of a checkpoint on one GPU device; prints "Average WER x.xxx  Average CER y.yyy" (%).
set -euo pipefail
usage="Usage: bash scripts/run_eval_gpu.sh [DEVICE_ID] [CKPT] [section.key=value ...]
  CKPT        checkpoint to evaluate (default: exp/zoo/checkpoints/best.ckpt); ours or the zoo's
  overrides   e.g. data.test_manifest=data/LibriSpeech_dataset/libri_test_other_manifest.csv eval.decoder=beam
  env CONFIG  YAML config (default: configs/zoo.yaml); LOG: log file (default ./eval.log)"
[ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ] && { echo "$usage"; exit 0; }
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO_ROOT/scripts/lib.sh"
DEVICE_ID="${1:-0}"; shift $(( $# > 0 ? 1 : 0 ))
[[ "$DEVICE_ID" =~ ^[0-9]+$ ]] || { echo "ERROR: DEVICE_ID must be a number, got '$DEVICE_ID'" >&2; echo "$usage" >&2; exit 2; }
CKPT="$(abspath "${1:-$REPO_ROOT/exp/zoo/checkpoints/best.ckpt}")"
shift $(( $# > 0 ? 1 : 0 ))
CONFIG="$(abspath "${CONFIG:-$REPO_ROOT/configs/zoo.yaml}")"; LOG="$(abspath "${LOG:-eval.log}")"
require_file "$CONFIG" "config"
require_file "$CKPT" "checkpoint"
cd "$REPO_ROOT"
run_logged "$LOG" python eval.py --config "$CONFIG" --pretrain_ckpt "$CKPT" --device_target GPU \
  --device_id "$DEVICE_ID" "$@"
