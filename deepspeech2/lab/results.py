"""Results table of a run directory: ``python -m deepspeech2.lab.results --exp exp/lab_small``."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from deepspeech2.lab.voices import format_voices_of_test_sets, voices_of_test_sets

__all__ = ["collect_results", "format_table", "GOALS", "check_goals", "format_goals", "main"]

# The accuracy targets of issue #12 (fractions): (set, metric, bound). A bound "2x:test_clean" is relative to
# the run's own test-clean CER (voices never heard in training may be at most twice as hard).
GOALS: dict[str, tuple[tuple[str, str, float | str], ...]] = {
    "quickstart": (("test_clean", "wer", 0.34), ("test_clean", "cer", 0.12), ("test_other", "cer", 0.20),
                   ("test_heldout", "cer", "2x:test_clean")),
    "long": (("test_clean", "wer", 0.15), ("test_clean", "cer", 0.05), ("test_other", "cer", 0.10),
             ("test_heldout", "cer", "2x:test_clean")),
}
RELATIVE_PREFIX = "2x:"


BESIDE = "beside"   # third column of stage_times.tsv: the stage ran in the background beside the next ones


def _stage_times(path: Path) -> tuple[dict[str, int], set[str]]:
    """Last recorded wall time (s) of each stage, and the stages that ran beside others (their time is
    not added to the total)."""
    times: dict[str, int] = {}
    beside: set[str] = set()
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            name, _, fields = line.partition("\t")
            secs, *flags = fields.split("\t")
            if secs.strip().isdigit():
                times[name] = int(secs)
                (beside.add if BESIDE in flags else beside.discard)(name)
    return times, beside


def collect_results(exp: str | Path) -> dict:
    """Eval summaries, baseline numbers, stage times and artefact paths of a run."""
    exp = Path(exp)
    evals = {p.stem.removeprefix("summary-"): json.loads(p.read_text()) for p in sorted((exp / "eval").glob("summary-*.json"))}
    baselines = {p.stem: json.loads(p.read_text()) for p in sorted((exp / "baseline").glob("*.json"))}
    mindir = sorted(str(p) for p in exp.glob("*.mindir"))
    times, beside = _stage_times(exp / "stage_times.tsv")
    return {"evals": evals, "baselines": baselines, "stage_seconds": times, "stages_beside": sorted(beside),
            "mindir": mindir, "best_checkpoint": str(exp / "checkpoints" / "best.ckpt")}


def _shown(path: str) -> str:
    """A path as the reader should see it: relative to the working directory when inside it."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def format_table(results: dict) -> str:
    rows = ["| set | decoder | WER % | CER % | utterances | RTF |", "|---|---|---|---|---|---|"]
    for name, s in results["evals"].items():
        rows.append(f"| {name.split('-')[0]} | {s.get('decoder', 'greedy')} | {100 * s['wer']:.2f} | "
                    f"{100 * s['cer']:.2f} | {s['utterances']} | {s['rtf']:.3f} |")
    for name, s in results["baselines"].items():
        rows.append(f"| {s.get('set', name)} | {name} (baseline) | {100 * s['wer']:.2f} | {100 * s['cer']:.2f} | "
                    f"{s['utterances']} | {s.get('rtf', float('nan')):.3f} |")
    times, beside = results["stage_seconds"], set(results.get("stages_beside", ()))
    shown = [f"{k} {v}" + (" (beside the next stages)" if k in beside else "") for k, v in times.items()]
    total = sum(v for k, v in times.items() if k not in beside)
    lines = ["\n".join(rows), "", "stage wall times (s): " + ", ".join(shown), f"total: {total} s",
             f"best checkpoint: {_shown(results['best_checkpoint'])}",
             f"MINDIR: {', '.join(map(_shown, results['mindir'])) or 'not exported'}"]
    return "\n".join(lines)


def _best(results: dict, set_name: str, metric: str) -> float | None:
    """The run's best ``metric`` on ``set_name`` over its decoders (None when not evaluated)."""
    values = [s[metric] for name, s in results["evals"].items() if name.split("-")[0] == set_name]
    return min(values) if values else None


def check_goals(results: dict, recipe: str) -> list[dict]:
    """Each goal of ``recipe`` with the run's best value and whether it is met (None: not evaluated)."""
    rows = []
    for set_name, metric, bound in GOALS[recipe]:
        value = _best(results, set_name, metric)
        if isinstance(bound, str):
            reference = _best(results, bound.removeprefix(RELATIVE_PREFIX), metric)
            bound = None if reference is None else 2 * reference
        met = None if value is None or bound is None else value <= bound
        rows.append({"set": set_name, "metric": metric, "value": value, "bound": bound, "met": met})
    return rows


GOAL_WORDING = {"line": "{set} {metric} {value:.2f} % ≤ {bound:.2f} %: {verdict}",
                "missing": "{set} {metric}: not evaluated", "verdicts": ("met", "NOT met"), "names": {}}


def format_goals(rows: list[dict], wording: dict = GOAL_WORDING) -> str:
    """One line per goal, e.g. ``test_clean CER 9.10 % ≤ 12.00 %: met`` (``wording`` gives other languages)."""
    lines = []
    for r in rows:
        fields = {"set": wording["names"].get(r["set"], r["set"]), "metric": r["metric"].upper()}
        if r["met"] is None:
            lines.append(wording["missing"].format(**fields))
            continue
        verdict = wording["verdicts"][0 if r["met"] else 1]
        lines.append(wording["line"].format(**fields, value=100 * r["value"], bound=100 * r["bound"], verdict=verdict))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deepspeech2.lab.results", description=__doc__)
    parser.add_argument("--exp", required=True, help="run directory (train.output_dir)")
    parser.add_argument("--goals", choices=sorted(GOALS), help="also check this recipe's accuracy targets")
    parser.add_argument("--corpus", help="the corpus archives the test sets came from (ds2-make-corpus --out): "
                                         "also print error rates per reader voice")
    args = parser.parse_args(argv)
    results = collect_results(args.exp)
    if args.goals:
        results["goals"] = check_goals(results, args.goals)
    (Path(args.exp) / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(format_table(results))
    if args.goals:
        print(f"\naccuracy targets ({args.goals}; best decoder per set):\n" + format_goals(results["goals"]))
    if args.corpus:
        tables = voices_of_test_sets(Path(args.exp) / "eval", args.corpus)
        print("\nerror rates per voice (python -m deepspeech2.lab.voices):\n\n" +
              (format_voices_of_test_sets(tables) or f"no test set with both recogs and its archive in {args.corpus}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
