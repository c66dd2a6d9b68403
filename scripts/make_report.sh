#!/usr/bin/env bash
# Regenerate report/README.md (Chinese lab report) from real runs: the quickstart run (exp/lab_small),
# its exact resume to twice its epochs, a MINDIR-vs-checkpoint check, the speed-up study (exp/speedup) and,
# when it exists (or with --with-long), the longer recipe (exp/lab_long). Runs what is missing.
set -euo pipefail
usage="Usage: bash scripts/make_report.sh [--rerun] [--with-long]
  --rerun      run the quickstart, the resume and the speed-up study again even if their results exist
  --with-long  also run the longer recipe (configs/lab_long.yaml, under 2 h of training) if exp/lab_long has no results"
RERUN=0 WITH_LONG=0
for arg in "$@"; do
  case "$arg" in
    -h|--help) echo "$usage"; exit 0 ;;
    --rerun) RERUN=1 ;;
    --with-long) WITH_LONG=1 ;;
    *) echo "unknown argument: $arg" >&2; echo "$usage" >&2; exit 2 ;;
  esac
done
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO_ROOT/scripts/lib.sh"
cd "$REPO_ROOT"
EXP="$REPO_ROOT/exp/lab_small"
SPEEDUP="$REPO_ROOT/exp/speedup"
LONG="$REPO_ROOT/exp/lab_long"
if [ "$RERUN" = 1 ] || [ ! -f "$EXP/results.json" ]; then
  bash scripts/quickstart.sh
fi
if [ "$WITH_LONG" = 1 ] && [ ! -f "$LONG/results.json" ]; then
  TRAIN_HOURS=20 EVAL_HOURS=0.2 MINUTES_PER_SPEAKER=1 DATA="$REPO_ROOT/data/long" EXP="$LONG" \
    CONFIG="$REPO_ROOT/configs/lab_long.yaml" bash scripts/quickstart.sh
fi
if [ "$RERUN" = 1 ] || [ ! -f "$SPEEDUP/speedup.json" ]; then
  bash scripts/speedup_study.sh "$SPEEDUP"
fi
# "What more training buys": resume the quickstart run exactly from its last checkpoint to twice its epochs.
MORE="${EXP}_more"
if [ "$RERUN" = 1 ] || [ ! -f "$MORE/metrics.jsonl" ]; then
  rm -rf "$MORE"
  epochs=$(python -c 'import sys; from deepspeech2.core.config import load_config; print(load_config(sys.argv[1]).train.epochs)' "$EXP/config.yaml")
  run_logged "$MORE.log" ds2-train --config "$EXP/config.yaml" train.resume="$EXP" train.output_dir="$MORE" \
    train.epochs=$(( 2 * epochs ))
fi
# The exported MINDIR must give the same transcripts as the checkpoint.
MANIFEST="$REPO_ROOT/data/LibriSpeech_dataset/libri_test_clean_manifest.json"
python eval.py --config configs/lab_small.yaml --mindir "$EXP/deepspeech2.mindir" --manifest "$MANIFEST" \
  --output_dir "$EXP/eval_mindir" | tail -n 1
python - "$EXP" <<'PY'
import json, sys
from pathlib import Path
exp = Path(sys.argv[1])
a = (exp / "eval" / "recogs-test_clean.txt").read_text()
b = (exp / "eval_mindir" / "recogs-test_clean.txt").read_text()
n = sum(1 for line in a.splitlines() if "ref=" in line)
(exp / "mindir_check.json").write_text(json.dumps({"identical": a == b, "utterances": n}))
print("MINDIR vs checkpoint transcripts identical:", a == b)
PY
python -m deepspeech2.lab.report --exp "$EXP" --extended "$MORE" --long "$LONG" --speedup "$SPEEDUP" \
  --data "$REPO_ROOT/data" --out "$REPO_ROOT/report"
