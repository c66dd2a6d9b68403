"""The recipe study: controlled training runs side by side → one table (JSON + Markdown).

``python -m deepspeech2.lab.recipe --run "label=exp/dir" [--run ...] --budget-min 8 --out report/data/recipe.json``

Each run directory is a ``ds2-train`` output (``config.yaml``, ``train.log``, ``metrics.jsonl``).
For every run the table gives the setting (its config keys that differ from the first run's),
the updates made, the median training throughput, and the dev CER/WER of the last epoch that
finished within the wall-clock budget (wall time read from the log's timestamps, dev evaluation
included) — the comparison the recipe was chosen by.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
from datetime import datetime
from pathlib import Path

import yaml

from deepspeech2.core.config import Config, config_to_dict
from deepspeech2.core.files import atomic_write_text

__all__ = ["run_record", "study_table", "main"]

LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ ")
EPOCH_DEV = re.compile(r"epoch (\d+) dev: ")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
RUN_FILES = ("config.yaml", "train.log", "metrics.jsonl")   # what ds2-train writes and the table reads
SECONDS_PER_MINUTE = 60.0


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _epoch_times(log_path: Path) -> dict[int, float]:
    """Minutes from the run's first log line to the end of each epoch's dev evaluation."""
    start, times = None, {}
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        stamp = LOG_TIME.match(line)
        if not stamp:
            continue
        moment = datetime.strptime(stamp.group(1), TIME_FORMAT)
        start = start or moment
        epoch = EPOCH_DEV.search(line)
        if epoch:
            times[int(epoch.group(1))] = (moment - start).total_seconds() / SECONDS_PER_MINUTE
    return times


def run_record(label: str, run_dir: str | Path) -> dict:
    """One run's config, throughput and per-epoch dev results with their wall times."""
    run_dir = Path(run_dir)
    config = _flatten(yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")))
    steps, rates, epochs = 0, [], []
    times = _epoch_times(run_dir / "train.log")
    for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("type") == "step":
            steps = max(steps, record["step"])
            rates.append(record["audio_s_per_s"])
        elif record.get("type") == "epoch" and "cer" in record:
            epochs.append({"epoch": record["epoch"], "step": record["step"], "cer": record["cer"],
                           "wer": record["wer"], "loss": record.get("loss"),
                           "minutes": times.get(record["epoch"])})
    return {"label": label, "run_dir": str(run_dir), "config": config, "steps": steps,
            "audio_s_per_s": statistics.median(rates) if rates else None, "epochs": epochs}


def _within_budget(record: dict, budget_min: float) -> dict | None:
    done = [e for e in record["epochs"] if e["minutes"] is not None and e["minutes"] <= budget_min]
    return done[-1] if done else None


SKIPPED_KEYS = ("data.train_manifest", "data.val_manifest", "data.test_manifest", "train.output_dir",
                "train.cpu_threads", "train.epochs",   # where the data is, and how long a run was let go
                "train.keep_last", "train.save_interval_steps", "train.log_interval")   # bookkeeping
SKIPPED_SECTIONS = ("eval.", "export.")                # test-time settings: the dev CER here is greedy


def study_table(records: list[dict], budget_min: float) -> tuple[list[dict], str]:
    """Rows (setting relative to the first run, updates and dev CER/WER within the budget) and
    the same as a Markdown table."""
    defaults = _flatten(config_to_dict(Config()))       # keys a run's config predates
    base = {**defaults, **records[0]["config"]} if records else {}
    rows = []
    record_epochs = {record["label"]: record["epochs"] for record in records}
    for record in records:
        config = {**defaults, **record["config"]}
        changed = {k: v for k, v in config.items()
                   if base.get(k) != v and k not in SKIPPED_KEYS and not k.startswith(SKIPPED_SECTIONS)}
        best = _within_budget(record, budget_min)
        last = record["epochs"][-1] if record["epochs"] else None
        rows.append({"label": record["label"], "changes": changed,
                     "audio_s_per_s": record["audio_s_per_s"], "budget": best, "last": last})
    lines = [f"| setting | changes vs. first row | audio-s/s | updates ≤ {budget_min:g} min | dev CER / WER ≤ "
             f"{budget_min:g} min | last epoch: updates, min, dev CER / WER | dev CER % by epoch |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        changes = ", ".join(f"`{k}={v}`" for k, v in row["changes"].items()) or "—"
        rate = f"{row['audio_s_per_s']:.1f}" if row["audio_s_per_s"] else "–"
        b, last = row["budget"], row["last"]
        within = (f"{b['step']} | {100 * b['cer']:.1f} / {100 * b['wer']:.1f}" if b else "– | –")
        tail = (f"{last['step']}, {last['minutes']:.1f}, {100 * last['cer']:.1f} / {100 * last['wer']:.1f}"
                if last and last["minutes"] is not None else "–")
        curve = ", ".join(f"{100 * e['cer']:.1f}" for e in record_epochs[row["label"]])
        lines.append(f"| {row['label']} | {changes} | {rate} | {within} | {tail} | {curve} |")
    return rows, "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deepspeech2.lab.recipe", description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", required=True,
                        help="label=run_dir, split at the last '=' (first = reference)")
    parser.add_argument("--budget-min", type=float, required=True, help="wall-clock budget per run (minutes)")
    parser.add_argument("--note", default="", help="how the runs were made (machine, load), kept in the JSON")
    parser.add_argument("--out", required=True, help="JSON output; a .md table is written beside it")
    parser.add_argument("--append", action="store_true",
                        help="add the runs to the study already in --out (its budget; notes are joined)")
    args = parser.parse_args(argv)
    records, note = [], args.note
    if args.append and Path(args.out).is_file():
        study = json.loads(Path(args.out).read_text(encoding="utf-8"))
        records, note = study["runs"], " ".join(filter(None, [study.get("note", ""), args.note]))
        if study["budget_min"] != args.budget_min:
            parser.error(f"--append: {args.out} was made with --budget-min {study['budget_min']:g}")
    for item in args.run:
        label, sep, path = item.rpartition("=")     # labels may name config keys (a=b); the last = splits
        if not sep:
            parser.error(f"--run {item!r}: expected label=run_dir")
        missing = [name for name in RUN_FILES if not (Path(path) / name).is_file()]
        if missing:
            parser.error(f"--run {item!r}: {path} is not a ds2-train run directory (missing {', '.join(missing)})")
        if label in {record["label"] for record in records}:
            parser.error(f"--run {item!r}: the study already has a run labelled {label!r}")
        records.append(run_record(label, path))
    rows, table = study_table(records, args.budget_min)
    out = Path(args.out)
    atomic_write_text(out, json.dumps({"budget_min": args.budget_min, "note": note, "runs": records,
                                       "rows": rows}, indent=1) + "\n")
    atomic_write_text(out.with_suffix(".md"), table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
