#!/usr/bin/env bash
# Regenerate report/README.md (Chinese lab report) from real runs: the quickstart run (exp/lab_small),
# a MINDIR-vs-checkpoint check, and the speed-up study (exp/speedup). Runs what is missing.
set -euo pipefail
usage="Usage: bash scripts/make_report.sh [--rerun]
  --rerun  run the quickstart and the speed-up study again even if their results exist"
[ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ] && { echo "$usage"; exit 0; }
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO_ROOT/scripts/lib.sh"
cd "$REPO_ROOT"
EXP="$REPO_ROOT/exp/lab_small"
SPEEDUP="$REPO_ROOT/exp/speedup"
if [ "${1:-}" = "--rerun" ] || [ ! -f "$EXP/results.json" ]; then
  bash scripts/quickstart.sh
fi
if [ "${1:-}" = "--rerun" ] || [ ! -f "$SPEEDUP/speedup.json" ]; then
  bash scripts/speedup_study.sh "$SPEEDUP"
fi
# "What more training buys": resume the quickstart run exactly from its last checkpoint up to epoch 12.
MORE="${EXP}_more"
if [ "${1:-}" = "--rerun" ] || [ ! -f "$MORE/metrics.jsonl" ]; then
  rm -rf "$MORE"
  run_logged "$MORE.log" ds2-train --config "$EXP/config.yaml" train.resume="$EXP" train.output_dir="$MORE" train.epochs=12
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
python -m deepspeech2.report --exp "$EXP" --speedup "$SPEEDUP" --data "$REPO_ROOT/data" --out "$REPO_ROOT/report"
