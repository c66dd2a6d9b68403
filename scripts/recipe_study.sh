#!/usr/bin/env bash
# The recipe study behind configs/lab_base.yaml: the same corpus, one change at a time, dev CER per
# epoch and within a wall-clock budget. Two runs at a time with one op thread each (on 2 cores that
# delivers more than one 2-thread run); then the table (JSON + Markdown) for the README and report.
# Needs a prepared corpus, e.g. the quickstart's: bash scripts/quickstart.sh --stop_stage 3
set -euo pipefail
usage="Usage: bash scripts/recipe_study.sh [PREPARED_DIR] [OUT_DIR]
  PREPARED_DIR  ds2-prepare-librispeech output (default: data/LibriSpeech_dataset)
  OUT_DIR       one run directory per setting + recipe.json/.md (default: exp/recipe_study)
  env EPOCHS (default 4), BUDGET_MIN (default 10)"
[ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ] && { echo "$usage"; exit 0; }
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO_ROOT/scripts/lib.sh"
PREPARED="$(abspath "${1:-$REPO_ROOT/data/LibriSpeech_dataset}")"
OUT="$(abspath "${2:-$REPO_ROOT/exp/recipe_study}")"
EPOCHS="${EPOCHS:-4}"
require_file "$PREPARED/libri_train_manifest.json" "prepared training manifest"
mkdir -p "$OUT"
cd "$REPO_ROOT"
# The previous release's lab network (zoo conv stack with 8 channels, 161-bin spectrogram) is the reference.
REFERENCE=(features.type=spectrogram features.window_size=0.02 model.conv_stack=zoo model.conv_channels=8)
declare -A SETTINGS=(
  [1_reference]="${REFERENCE[*]}"
  [2_fbank_small_t4]=""
  [3_spectrogram_small_t4]="features.type=spectrogram features.window_size=0.02"
  [4_speed_specaugment]="data.augment.speed_perturb=0.1 data.augment.freq_masks=2 data.augment.time_masks=2"
  [5_speed_only]="data.augment.speed_perturb=0.1"
  [6_batch_4]="data.batch_size=4"
)
train_one() {  # train_one NAME [overrides...]
  local name="$1"; shift
  ds2-train --config configs/lab_small.yaml data.train_manifest="$PREPARED/libri_train_manifest.json" \
    data.val_manifest="$PREPARED/libri_val_manifest.json" train.output_dir="$OUT/$name" train.epochs="$EPOCHS" \
    train.cpu_threads=1 "$@" > "$OUT/$name.out" 2>&1
}
names=($(printf '%s\n' "${!SETTINGS[@]}" | sort))
for ((i = 0; i < ${#names[@]}; i += 2)); do       # two at a time
  for name in "${names[@]:i:2}"; do
    echo "== $name: ${SETTINGS[$name]:-lab_small as is}"
    # shellcheck disable=SC2086
    train_one "$name" ${SETTINGS[$name]} &
  done
  wait
done
runs=()
for name in "${names[@]}"; do runs+=(--run "$name=$OUT/$name"); done
python -m deepspeech2.lab.recipe --budget-min "${BUDGET_MIN:-10}" --out "$OUT/recipe.json" \
  --note "$(date +%F), $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) cores; two runs at a time" "${runs[@]}"
