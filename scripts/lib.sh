#!/usr/bin/env bash
# Shared by the launchers: environment, absolute paths, logged runs. Source it; don't run it.
# shellcheck source=setup_env.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/setup_env.sh"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# abspath PATH: absolute form of a path given relative to the caller's working directory.
abspath() { case "$1" in /*) echo "$1" ;; "") echo "" ;; *) echo "$PWD/$1" ;; esac; }

# run_logged LOGFILE CMD...: run in the foreground, output to the console and appended to LOGFILE.
# Ctrl-C / SIGTERM sent to the whole process group (a terminal, kill -- -PGID, a batch scheduler) is for
# CMD alone: tee ignores both and logs until CMD has saved its checkpoint and exited, and this shell
# waits for CMD and returns its status (130 after SIGINT, 143 after SIGTERM).
run_logged() {
  local logfile="$1"; shift
  mkdir -p "$(dirname "$logfile")"
  echo "[$(date '+%F %T')] $*" | tee -a "$logfile"
  local status=0
  trap : INT TERM
  "$@" 2>&1 | (trap '' INT TERM; exec tee -a "$logfile") || status=$?   # pipefail: CMD's status
  trap - INT TERM
  return "$status"
}

# require_file PATH WHAT: fail with a clear message when an input file is missing.
require_file() {
  if [ ! -f "$1" ]; then echo "ERROR: $2 not found: $1" >&2; exit 2; fi
}

# --- launchers: scripts/run_{standalone_train,eval,distribute_train}_<target>.sh call these ---------
_ds2_lower() { echo "$1" | tr '[:upper:]' '[:lower:]'; }
_ds2_default_config() { [ "$1" = CPU ] && echo "$REPO_ROOT/configs/zoo.yaml" || echo "$REPO_ROOT/configs/$(_ds2_lower "$1").yaml"; }
_ds2_number() {  # _ds2_number NAME VALUE USAGE: fail unless VALUE is a whole number
  [[ "$2" =~ ^[0-9]+$ ]] || { echo "ERROR: $1 must be a number, got '$2'" >&2; echo "$3" >&2; exit 2; }
}

# standalone_train TARGET [DEVICE_ID (not for CPU)] [PRETRAINED_CKPT] [section.key=value ...]
standalone_train() {
  local target="$1"; shift
  local name; name="run_standalone_train_$(_ds2_lower "$target").sh"
  local dev_arg=""; [ "$target" = CPU ] || dev_arg="[DEVICE_ID] "
  local usage="Usage: bash scripts/$name ${dev_arg}[PRETRAINED_CKPT] [section.key=value ...]
  PRETRAINED_CKPT  initial weights (ours or the model zoo's DeepSpeech.ckpt); '' or omitted = from scratch
  env CONFIG       YAML config (default: $(_ds2_default_config "$target")); LOG: log file (default ./train.log)"
  case "${1:-}" in -h|--help) echo "$usage"; exit 0 ;; esac
  local device_id=0
  if [ "$target" != CPU ]; then device_id="${1:-0}"; shift $(( $# > 0 ? 1 : 0 )); _ds2_number DEVICE_ID "$device_id" "$usage"; fi
  local ckpt; ckpt="$(abspath "${1:-}")"; shift $(( $# > 0 ? 1 : 0 ))
  local config; config="$(abspath "${CONFIG:-$(_ds2_default_config "$target")}")"
  local log; log="$(abspath "${LOG:-train.log}")"
  require_file "$config" "config"
  [ -z "$ckpt" ] || require_file "$ckpt" "pretrained checkpoint"
  cd "$REPO_ROOT"
  run_logged "$log" python train.py --config "$config" --device_target "$target" --device_id "$device_id" \
    ${ckpt:+--pre_trained_model_path "$ckpt"} "$@"
}

# evaluate TARGET [DEVICE_ID (not for CPU)] [CKPT] [section.key=value ...]
evaluate() {
  local target="$1"; shift
  local name; name="run_eval_$(_ds2_lower "$target").sh"
  local dev_arg=""; [ "$target" = CPU ] || dev_arg="[DEVICE_ID] "
  local usage="Usage: bash scripts/$name ${dev_arg}[CKPT] [section.key=value ...]
  CKPT        checkpoint to evaluate (default: exp/zoo/checkpoints/best.ckpt); ours or the zoo's
  overrides   e.g. data.test_manifest=data/LibriSpeech_dataset/libri_test_other_manifest.csv eval.decoder=beam
  prints      Average WER x.xxx  Average CER y.yyy (percent)
  env CONFIG  YAML config (default: $(_ds2_default_config "$target")); LOG: log file (default ./eval.log)"
  case "${1:-}" in -h|--help) echo "$usage"; exit 0 ;; esac
  local device_id=0
  if [ "$target" != CPU ]; then device_id="${1:-0}"; shift $(( $# > 0 ? 1 : 0 )); _ds2_number DEVICE_ID "$device_id" "$usage"; fi
  local ckpt; ckpt="$(abspath "${1:-$REPO_ROOT/exp/zoo/checkpoints/best.ckpt}")"; shift $(( $# > 0 ? 1 : 0 ))
  local config; config="$(abspath "${CONFIG:-$(_ds2_default_config "$target")}")"
  local log; log="$(abspath "${LOG:-eval.log}")"
  require_file "$config" "config"
  require_file "$ckpt" "checkpoint"
  cd "$REPO_ROOT"
  run_logged "$log" python eval.py --config "$config" --pretrain_ckpt "$ckpt" --device_target "$target" \
    --device_id "$device_id" "$@"
}

# distribute_train TARGET [WORKERS|DEVICE_NUM] [PRETRAINED_CKPT] [section.key=value ...]
# msrun (MindSpore's launcher) starts one process per device; mean gradients, per-rank data shards,
# rank 0 logs and saves. mpirun alternative: mpirun -n N python train.py --is_distributed ...
distribute_train() {
  local target="$1"; shift
  local name; name="run_distribute_train_$(_ds2_lower "$target").sh"
  local count_name=DEVICE_NUM default_count=8
  [ "$target" = CPU ] && { count_name=WORKERS; default_count=2; }
  local usage="Usage: bash scripts/$name [$count_name] [PRETRAINED_CKPT] [section.key=value ...]
  $count_name  processes to start (default $default_count)
  env CONFIG (default: $(_ds2_default_config "$target")), LOG_DIR per-rank logs (default ./msrun_logs), MASTER_PORT (default 8118)"
  case "${1:-}" in -h|--help) echo "$usage"; exit 0 ;; esac
  local workers="${1:-$default_count}"; shift $(( $# > 0 ? 1 : 0 ))
  _ds2_number "$count_name" "$workers" "$usage"
  local ckpt; ckpt="$(abspath "${1:-}")"; shift $(( $# > 0 ? 1 : 0 ))
  local config; config="$(abspath "${CONFIG:-$(_ds2_default_config "$target")}")"
  local log_dir; log_dir="$(abspath "${LOG_DIR:-msrun_logs}")"
  require_file "$config" "config"
  [ -z "$ckpt" ] || require_file "$ckpt" "pretrained checkpoint"
  command -v msrun >/dev/null || { echo "ERROR: msrun not found (it comes with mindspore; is the venv on PATH?)" >&2; exit 2; }
  cd "$REPO_ROOT"
  msrun --worker_num="$workers" --local_worker_num="$workers" --master_port="${MASTER_PORT:-8118}" \
    --log_dir="$log_dir" --join=True \
    train.py --config "$config" --device_target "$target" --is_distributed ${ckpt:+--pre_trained_model_path "$ckpt"} "$@"
  echo "per-rank logs: $log_dir/worker_*.log"
}
