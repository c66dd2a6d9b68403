"""Speed-up study table and chart from ``ds2-bench`` records (``scripts/speedup_study.sh``)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from deepspeech2.lab.bench import TRAIN_CLEAN_100_HOURS

__all__ = ["load_records", "build_table", "kernel_pairs", "profile_markdown", "main"]

SECONDS_PER_HOUR = 3600
# Cited, not measured here: the zoo's README (2 x V100, batch 20, 2.139 s/step) with LibriSpeech's
# mean training utterance of ~12.7 s.
CITED_GPU = {"label": "cited: zoo on 2xV100, batch 20", "s_per_step": 2.139, "batch": 20, "seconds": 12.7}
PROFILE_TOP_OPS = 8   # op types per profiled setting shown in the profile table


def load_records(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def build_table(records: list[dict]) -> dict:
    """Rows with s/step, audio-s/s, epoch hours, GFLOP/s, % of GEMM peak and speed-up vs the first row."""
    gemm = next((r["gflops"] for r in records if r["bench"] == "gemm"), None)
    steps = [r for r in records if r["bench"] == "train-step"]
    rows = []
    for r in steps:
        rows.append({"label": r["label"], "model": r["model"], "batch": r["batch"], "s_per_step": r["s_per_step"],
                     "audio_s_per_s": r["audio_s_per_s"], "epoch_hours": r["epoch_hours"], "gflops": r["gflops"],
                     "pct_of_peak": 100 * r["gflops"] / gemm if gemm else None, "peak_rss_gb": r["peak_rss_gb"],
                     "cores_busy": r.get("cores_busy"), "rnn_impl": r.get("rnn_impl", "auto"),
                     "speedup": r["audio_s_per_s"] / steps[0]["audio_s_per_s"]})
    cited_rate = CITED_GPU["batch"] * CITED_GPU["seconds"] / CITED_GPU["s_per_step"]
    cited = {**CITED_GPU, "audio_s_per_s": cited_rate, "epoch_hours": TRAIN_CLEAN_100_HOURS / cited_rate}
    floor = None
    full = [r for r in steps if r["model"].endswith("5x1024") and r.get("pad_to", 0) == 0]
    if full and gemm:
        r = full[0]
        flop_per_audio_s = r["gflops"] * 1e9 * r["s_per_step"] / (r["batch"] * r["seconds"])
        floor = {"gemm_peak_gflops": gemm, "epoch_pflop": flop_per_audio_s * TRAIN_CLEAN_100_HOURS * SECONDS_PER_HOUR / 1e15,
                 "hours_at_peak": flop_per_audio_s * TRAIN_CLEAN_100_HOURS / (gemm * 1e9)}
    data = [r for r in records if r["bench"] == "data"]
    profiles = [{"label": r["label"], "s_per_step": r["s_per_step"], "ops": r["op_ms_per_step"]}
                for r in steps if r.get("op_ms_per_step")]
    cpus = sorted({r["cpu"] for r in records if r.get("cpu")})
    return {"cpus": cpus, "rows": rows, "cited_gpu": cited, "floor": floor, "data_pipeline": data, "profiles": profiles,
            "kernel_pairs": kernel_pairs(steps)}


def _setting(record: dict) -> tuple:
    """Everything but the RNN kernel that decides a train-step record's speed."""
    return (record["model"], record["batch"], record["seconds"], record.get("mode"), record.get("amp_level"),
            record.get("threads"), record.get("pad_to", 0))


def kernel_pairs(steps: list[dict]) -> list[dict]:
    """The package's own LSTM kernel (``rnn_impl`` custom) beside MindSpore's fused one for every setting
    measured both ways: s/step and peak RSS of each, first record of each kind (records name the
    implementation that ran; older ones, with ``auto`` or none, are not paired)."""
    by_setting: dict[tuple, dict[str, dict]] = {}
    for r in steps:
        by_setting.setdefault(_setting(r), {}).setdefault(r.get("rnn_impl"), r)
    return [{"model": setting[0], "batch": setting[1],
             "fused_s_per_step": kinds["fused"]["s_per_step"], "custom_s_per_step": kinds["custom"]["s_per_step"],
             "fused_peak_rss_gb": kinds["fused"]["peak_rss_gb"], "custom_peak_rss_gb": kinds["custom"]["peak_rss_gb"]}
            for setting, kinds in by_setting.items() if {"fused", "custom"} <= kinds.keys()]


def profile_markdown(table: dict, top: int = PROFILE_TOP_OPS) -> str:
    """The profiled settings side by side: ms per step of the op types that cost most in any of them."""
    profiles = table.get("profiles") or []
    if not profiles:
        return ""
    ops = sorted({op for p in profiles for op in list(p["ops"])[:top]},
                 key=lambda op: -max(p["ops"].get(op, 0.0) for p in profiles))
    lines = ["| op type (ms per step) | " + " | ".join(p["label"] for p in profiles) + " |",
             "|---|" + "---|" * len(profiles)]
    lines += [f"| {op} | " + " | ".join(f"{p['ops'].get(op, 0.0):.1f}" for p in profiles) + " |" for op in ops]
    lines.append("| *step wall time* | " + " | ".join(f"*{1000 * p['s_per_step']:.0f}*" for p in profiles) + " |")
    return "\n".join(lines) + "\n"


def _markdown(table: dict) -> str:
    cpus = table.get("cpus") or ["not recorded"]
    lines = [f"CPU: {' / '.join(cpus)}", "",
             "| setting | model | batch | s/step | audio-s/s | h/epoch (train-clean-100) | GFLOP/s | % GEMM peak | "
             "peak RSS GB | cores busy | speed-up |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table["rows"]:
        pct = f"{r['pct_of_peak']:.0f}" if r["pct_of_peak"] is not None else "-"
        cores = f"{r['cores_busy']:.2f}" if r.get("cores_busy") is not None else "-"
        lines.append(f"| {r['label']} | {r['model']} | {r['batch']} | {r['s_per_step']:.2f} | {r['audio_s_per_s']:.2f} | "
                     f"{r['epoch_hours']:.1f} | {r['gflops']:.1f} | {pct} | {r['peak_rss_gb']:.2f} | {cores} | "
                     f"{r['speedup']:.1f}x |")
    c = table["cited_gpu"]
    lines.append(f"| {c['label']} (cited) | zoo 5x1024 | {c['batch']} | {c['s_per_step']:.3f} | {c['audio_s_per_s']:.0f} | "
                 f"{c['epoch_hours']:.2f} | - | - | - | - | - |")
    if table["floor"]:
        f = table["floor"]
        lines += ["", f"One train-clean-100 epoch of the full model is {f['epoch_pflop']:.1f} PFLOP; at this CPU's "
                      f"measured fp32 GEMM peak ({f['gemm_peak_gflops']:.0f} GFLOP/s) it would still take "
                      f"{f['hours_at_peak']:.1f} h."]
    if table["data_pipeline"]:
        lines += ["", "| data pipeline | workers | utterances/s | audio-s/s |", "|---|---|---|---|"]
        for d in table["data_pipeline"]:
            kind = "processes" if d["processes"] else "threads"
            lines.append(f"| {kind} | {d['workers']} | {d['utts_per_s']:.1f} | {d['audio_s_per_s']:.1f} |")
    return "\n".join(lines) + "\n"


def _chart(table: dict, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = table["rows"]
    labels = [r["label"] for r in rows] + [table["cited_gpu"]["label"]]
    hours = [r["epoch_hours"] for r in rows] + [table["cited_gpu"]["epoch_hours"]]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(labels) + 1.2))
    bars = ax.barh(range(len(labels)), hours, color=["C0"] * len(rows) + ["C7"])
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("hours per train-clean-100 epoch (100.6 h of audio), log scale")
    ax.bar_label(bars, [f"{h:.1f} h" for h in hours], padding=3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deepspeech2.lab.speedup", description=__doc__)
    parser.add_argument("--records", required=True, help="speedup.jsonl from ds2-bench --json")
    parser.add_argument("--out", required=True, help="directory for speedup.json/.md/.png")
    args = parser.parse_args(argv)
    out = Path(args.out)
    table = build_table(load_records(args.records))
    (out / "speedup.json").write_text(json.dumps(table, indent=2), encoding="utf-8")
    (out / "speedup.md").write_text(_markdown(table), encoding="utf-8")
    (out / "profile.md").write_text(profile_markdown(table), encoding="utf-8")
    _chart(table, out / "speedup.png")
    print(_markdown(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
