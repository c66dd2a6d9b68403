#!/usr/bin/env bash
# Data-parallel training on CPU with msrun (MindSpore's launcher): one process per device, mean gradients,
# each rank reads its own shard of every epoch; rank 0 logs and saves checkpoints.
# mpirun alternative (documented by MindSpore): mpirun -n N python train.py --is_distributed ... (needs OpenMPI).
set -euo pipefail
usage="Usage: bash scripts/run_distribute_train_cpu.sh [WORKERS] [PRETRAINED_CKPT] [section.key=value ...]
  WORKERS  processes to start (default 2)
  env CONFIG   YAML config (default: configs/zoo.yaml); LOG_DIR: per-rank logs (default ./msrun_logs);
      MASTER_PORT (default 8118)"
[ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ] && { echo "$usage"; exit 0; }
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO_ROOT/scripts/lib.sh"
WORKERS="${1:-2}"; shift $(( $# > 0 ? 1 : 0 ))
[[ "$WORKERS" =~ ^[1-9][0-9]*$ ]] || { echo "ERROR: WORKERS must be a positive number, got '$WORKERS'" >&2; echo "$usage" >&2; exit 2; }
CKPT="$(abspath "${1:-}")"; shift $(( $# > 0 ? 1 : 0 ))
CONFIG="$(abspath "${CONFIG:-$REPO_ROOT/configs/zoo.yaml}")"
LOG_DIR="$(abspath "${LOG_DIR:-msrun_logs}")"
require_file "$CONFIG" "config"
[ -z "$CKPT" ] || require_file "$CKPT" "pretrained checkpoint"
command -v msrun >/dev/null || { echo "ERROR: msrun not found (it comes with mindspore; is the venv on PATH?)" >&2; exit 2; }
cd "$REPO_ROOT"
msrun --worker_num="$WORKERS" --local_worker_num="$WORKERS" --master_port="${MASTER_PORT:-8118}" \
  --log_dir="$LOG_DIR" --join=True \
  train.py --config "$CONFIG" --device_target CPU --is_distributed ${CKPT:+--pre_trained_model_path "$CKPT"} "$@"
echo "per-rank logs: $LOG_DIR/worker_*.log"
