#!/usr/bin/env bash
# The lab's question — "one epoch takes 50 hours on CPU: how do we speed it up?" — measured here:
# ds2-bench train-step for each setting (one process each, so peak memory is per setting), then a
# table (JSON + Markdown) and a bar chart of the extrapolated hours per train-clean-100 epoch.
set -euo pipefail
usage="Usage: bash scripts/speedup_study.sh [OUT_DIR] [--quick]
  OUT_DIR  where speedup.jsonl / speedup.json / speedup.md / speedup.png go (default: exp/speedup)
  --quick  fewer timed steps and no full-model batch 16/20 runs (for a smoke test)"
[ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ] && { echo "$usage"; exit 0; }
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO_ROOT/scripts/lib.sh"
OUT="$(abspath "${1:-$REPO_ROOT/exp/speedup}")"; shift $(( $# > 0 ? 1 : 0 ))
QUICK="${1:-}"
STEPS=3; [ "$QUICK" = "--quick" ] && STEPS=1
mkdir -p "$OUT"
JSON="$OUT/speedup.jsonl"
: > "$JSON"
cd "$REPO_ROOT"
bench() {  # bench LABEL [ds2-bench train-step args...]
  local label="$1"; shift
  echo "== $label"
  ds2-bench train-step --json "$JSON" --label "$label" --steps "$STEPS" "$@" 2>>"$OUT/bench.log" | tail -n 1
}
ds2-bench gemm --json "$JSON"
ZOO=(--config configs/zoo.yaml train.cpu_threads=2)
SMALL=(--config configs/lab_small.yaml train.cpu_threads=2)
bench "lab: zoo net, batch 1, PYNATIVE, pad 1250" "${ZOO[@]}" --batch 1 --pad-to 1250 train.mode=pynative
bench "batch 1, GRAPH, pad 1250"                  "${ZOO[@]}" --batch 1 --pad-to 1250
bench "batch 1, GRAPH, no fixed padding"          "${ZOO[@]}" --batch 1
bench "batch 8, GRAPH, bucketing"                 "${ZOO[@]}" --batch 8
bench "batch 8, GRAPH, pad 1250"                  "${ZOO[@]}" --batch 8 --pad-to 1250
bench "batch 8, 1 thread"                         "${ZOO[@]}" --batch 8 train.cpu_threads=1
bench "batch 8, amp O2 float16"                   "${ZOO[@]}" --batch 8 train.amp_level=O2 train.loss_scale=dynamic
bench "batch 8, MindSpore's fused LSTM"           "${ZOO[@]}" --batch 8 model.rnn_impl=fused
if [ "$QUICK" != "--quick" ]; then
  bench "batch 16, GRAPH, bucketing"              "${ZOO[@]}" --batch 16
  bench "batch 20, GRAPH, bucketing"              "${ZOO[@]}" --batch 20
fi
bench "lab_small preset, batch 8"                 "${SMALL[@]}" --batch 8 --profile "$OUT/profile_matmul_conv"
bench "lab_small, oneDNN convs + AVX2 cap"        "${SMALL[@]}" --batch 8 model.conv_impl=onednn \
  --profile "$OUT/profile_onednn_conv"
bench "lab_small, MindSpore's fused LSTM"         "${SMALL[@]}" --batch 8 model.rnn_impl=fused
bench "lab_small, 1 thread"                       "${SMALL[@]}" --batch 8 train.cpu_threads=1
bench "lab_small, jit_level O1 (op fusion)"        "${SMALL[@]}" --batch 8 train.jit_level=O1
bench "lab_small, batch 16"                       "${SMALL[@]}" --batch 16
bench "small 256x3 (32 conv ch), batch 8"         "${SMALL[@]}" --batch 8 model.conv_channels=32
MANIFEST="$REPO_ROOT/data/LibriSpeech_dataset/libri_train_manifest.json"
if [ -f "$MANIFEST" ]; then
  ds2-bench data --json "$JSON" --config configs/zoo.yaml --manifest "$MANIFEST" --workers 1,2 --batches 12 \
    2>>"$OUT/bench.log"
  ds2-bench data --json "$JSON" --config configs/zoo.yaml --manifest "$MANIFEST" --workers 2 --batches 12 \
    --label threads data.python_multiprocessing=false 2>>"$OUT/bench.log"
fi
python -m deepspeech2.lab.speedup --records "$JSON" --out "$OUT"
