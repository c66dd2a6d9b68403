"""Fill ``report/template.md`` with numbers and figures from real runs → ``report/README.md``.

``python -m deepspeech2.lab.report --exp exp/lab_small --extended exp/lab_small_more --long exp/lab_long
--speedup exp/speedup --data data --out report``
Every number in the report comes from files these runs wrote; missing runs are marked as such.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
from datetime import date
from pathlib import Path
from string import Template

from deepspeech2.core.device import cpu_model
from deepspeech2.lab.results import check_goals, collect_results, format_goals
from deepspeech2.lab.voices import format_voices_of_test_sets, voices_of_test_sets

__all__ = ["gather", "main"]
MISSING = "（未运行：请先执行对应脚本）"
LONG_SNAPSHOT = "long_run.md"   # report/data/: the longer recipe's section as last rendered from a real run
LONG_SNAPSHOT_NOTE = ("（本次生成报告时没有更长配方的运行结果（`exp/lab_long`）；下面是上一次实际运行的记录，"
                      f"保存在 `report/data/{LONG_SNAPSHOT}`，重新运行见上方命令。）")
GOAL_WORDING_ZH = {"line": "- {set} {metric} {value:.2f}%（目标 ≤ {bound:.2f}%）：{verdict}", "missing": "- {set} {metric}：未评估",
                   "verdicts": ("达到", "**未达到**"),
                   "names": {"test_clean": "test-clean", "test_other": "test-other",
                             "test_heldout": "test-heldout（未听过的声音）"}}


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _synthesis_line(gen: dict) -> str:
    """Synthesis cost summed over the split records (a re-run that reused every split still has them)."""
    splits = list(gen.get("splits", {}).values())
    try:
        hours = sum(s["hours"] for s in splits)
        wall = sum(s["wall_seconds"] for s in splits)
        cpu = sum(s["cpu_seconds"] for s in splits)
    except KeyError:
        return ""
    if not hours or not wall:
        return ""
    reused = "（本次运行复用了先前合成的语料）" if not gen.get("this_run", {}).get("generated_splits", True) else ""
    return (f"\n\n合成：{hours:.2f} 小时音频，墙钟 {wall:.0f} 秒，{hours / (wall / 60):.2f} 小时音频/分钟，"
            f"每小时音频 {cpu / hours:.0f} CPU 秒{reused}。")


def _corpus_table(data: Path) -> str:
    gen = _read_json(data / "corpus" / "generation_report.json")
    prep = _read_json(data / "LibriSpeech_dataset" / "prepare_summary.json")
    if not gen:
        return MISSING
    lines = ["| 子集 | 小时 | 句数 | 说话人 | 时长中位数 (s) |", "|---|---|---|---|---|"]
    for name, s in gen.get("splits", {}).items():
        dur = s.get("duration_seconds", {})
        lines.append(f"| {name} | {s.get('hours', 0):.2f} | {s.get('utterances', '-')} | {s.get('speakers', '-')} | "
                     f"{dur.get('median', float('nan')):.1f} |")
    extra = [_synthesis_line(gen)]
    if prep:
        extra.append(f"预处理（FLAC→WAV、清单）：{prep['files']['prepared']} 个文件，{prep['audio_hours']['prepared']:.2f} 小时，"
                     f"{prep['wall_time_s']:.1f} 秒（{prep['files_per_s']:.0f} 文件/秒，"
                     f"{prep['audio_hours_per_min']:.1f} 小时音频/分钟）。")
    return "\n".join(lines) + "\n".join(extra)


def _train_summary(exp: Path) -> str:
    metrics = exp / "metrics.jsonl"
    if not metrics.is_file():
        return MISSING
    from deepspeech2.lab.plots import read_metrics
    steps, epochs = read_metrics(metrics)
    rate = sorted(r["audio_s_per_s"] for r in steps)[len(steps) // 2]
    lines = [f"- 训练步数 {steps[-1]['step']}，首个记录的损失 {steps[0]['loss']:.1f}，末步损失 {steps[-1]['loss']:.2f}；"
             f"吞吐中位数 {rate:.1f} 音频秒/秒。"]
    evaluated = [r for r in epochs if "wer" in r]
    for r in evaluated:
        lines.append(f"- 第 {r['epoch']} 轮结束：dev 损失 {r.get('loss', float('nan')):.2f}，"
                     f"WER {100 * r['wer']:.2f}%，CER {100 * r['cer']:.2f}%")
    if any("loss" in r for r in evaluated):
        best = min((r for r in evaluated if "loss" in r), key=lambda r: r["loss"])
        trend = ("之后回升（过拟合）" if best is not evaluated[-1] else "，仍在下降")
        lines.append(f"- dev 损失最低在第 {best['epoch']} 轮（共 {evaluated[-1]['epoch']} 轮）{trend}。")
    return "\n".join(lines)


def _loading_summary(exp: Path) -> str:
    """How busy the quickstart's training kept the CPU and what data loading cost it: medians over the
    step records of ``metrics.jsonl`` (CPU-s per wall-s; throughput with loading / the step's own)."""
    metrics = exp / "metrics.jsonl"
    if not metrics.is_file():
        return MISSING
    from deepspeech2.lab.plots import read_metrics
    steps = [r for r in read_metrics(metrics)[0] if r.get("cores_busy") is not None and r.get("wall_audio_s_per_s")]
    if not steps:
        return MISSING
    cores = statistics.median(r["cores_busy"] for r in steps)
    ratio = statistics.median(r["wall_audio_s_per_s"] / r["audio_s_per_s"] for r in steps)
    return (f"本次快速实验的训练平均占用 {cores:.2f} 个核，含数据加载在内的吞吐是纯训练步的 {100 * ratio:.1f}%"
            f"（{len(steps)} 条日志的中位数；训练时机器上若有别的任务，两者都偏低）")


def _kernel_summary(table: dict | None) -> str:
    """The package's own LSTM kernel against MindSpore's fused one, from the speed-up study's pairs
    (``speedup.json``; None when the study was not run)."""
    pairs = table.get("kernel_pairs") if table else None
    if not pairs:
        return MISSING
    return "；".join(f"{p['model']}（批大小 {p['batch']}）每步 {p['custom_s_per_step']:.2f} 秒对 {p['fused_s_per_step']:.2f} 秒"
                    f"（{p['custom_s_per_step'] / p['fused_s_per_step']:.2f} 倍），峰值内存 {p['custom_peak_rss_gb']:.2f} GB "
                    f"对 {p['fused_peak_rss_gb']:.2f} GB" for p in pairs)


def _pipeline_summary(table: dict | None) -> str:
    """Worker processes against worker threads at the largest worker count the speed-up study
    (``speedup.json``; None when not run) measured both."""
    rows = table.get("data_pipeline") if table else None
    kinds = {(r["processes"], r["workers"]): r["audio_s_per_s"] for r in rows or []}
    both = [w for p, w in kinds if p and (False, w) in kinds]
    if not both:
        return MISSING
    workers = max(both)
    procs, threads = kinds[(True, workers)], kinds[(False, workers)]
    faster = "进程" if procs > threads else "线程"
    return (f"{workers} 个 worker 时{faster}更快（进程 {procs:.0f}、线程 {threads:.0f} 音频秒/秒）：线程省去进程间传递批次的"
            f"开销，进程不受 Python GIL 的限制，孰快因机器而异（`data.python_multiprocessing`）")


def _model_summary(exp: Path) -> str:
    """The trained preset as the run recorded it (exp/config.yaml), with its parameter count."""
    path = exp / "config.yaml"
    if not path.is_file():
        return MISSING
    from deepspeech2.data.vocab import build_vocab
    from deepspeech2.core.config import load_config
    from deepspeech2.model.network import ZOO_PARAMETERS, DeepSpeech2, count_parameters

    cfg = load_config(path)
    m, o, d = cfg.model, cfg.optim, cfg.data
    params = count_parameters(DeepSpeech2(m, cfg.features, len(build_vocab(cfg))))
    norms = "，RNN 层间与输出层前加 BatchNorm" if m.rnn_batch_norm and m.fc_batch_norm else ""
    return (f"本次训练的配置（`{path.name}`，训练时写出）：两层卷积 {m.conv_channels} 通道，"
            f"{m.num_layers} 层{'双向' if m.bidirectional else '单向'} {m.rnn_type.upper()}，隐层 {m.hidden_size}{norms}，"
            f"共 {params:,} 个参数（模型库完整结构为 {ZOO_PARAMETERS:,}）；批大小 {d.batch_size}，峰值学习率 {o.lr:g}，"
            f"预热 {o.warmup_steps} 步，每轮除以 {o.anneal:g}，{cfg.train.epochs} 轮。")


def _recipe_study(path: Path) -> tuple[str, str]:
    """The recipe-study table re-rendered from its committed record, and how it was measured."""
    study = _read_json(path)
    if not study:
        return MISSING, ""
    from deepspeech2.lab.recipe import study_table

    _, table = study_table(study["runs"], study["budget_min"])
    return table, f"测量条件：{study.get('note', '')}"


def _goal_lines(results: dict, recipe: str) -> str:
    """The recipe's accuracy targets (deepspeech2.lab.results.GOALS) checked, one line each."""
    rows = check_goals(results, recipe)
    if all(r["met"] is None for r in rows):
        return MISSING
    return format_goals(rows, GOAL_WORDING_ZH)


def _long_run(exp: Path, snapshot: Path) -> str:
    """The longer recipe's section: its preset, training curve, results table and goal. The section is
    also kept in ``snapshot`` (committed with the report, headed by its date and CPU), so that a report
    regenerated without the hour-long run shows the last one measured; MISSING when neither exists."""
    if not (exp / "metrics.jsonl").is_file():
        if snapshot.is_file():
            return f"{LONG_SNAPSHOT_NOTE}\n\n{snapshot.read_text(encoding='utf-8')}"
        return MISSING
    from deepspeech2.core.config import load_config
    from deepspeech2.lab.results import format_table

    results = collect_results(exp)
    data = Path(load_config(exp / "config.yaml").data.train_manifest).parent.parent  # <data>/LibriSpeech_dataset/x.json
    parts = [_corpus_table(data), "", _model_summary(exp), "", _train_summary(exp), ""]
    if (exp / "loss_curve.png").is_file():
        parts += ["![长训练曲线](figures/loss_curve_long.png)", ""]
    if results["evals"]:
        parts += [format_table(results), "", "精度目标（各测试集取最好的解码器）：", "", _goal_lines(results, "long")]
    section = "\n".join(parts)
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    run_date = date.fromtimestamp((exp / "metrics.jsonl").stat().st_mtime).isoformat()   # the run's, not today's
    snapshot.write_text(f"（{run_date} 运行，CPU：{cpu_model()}）\n\n{section}\n", encoding="utf-8")
    return section


def gather(exp: Path, speedup: Path, data: Path, figures: Path, extended: Path, long: Path) -> dict[str, str]:
    """Template values: tables as Markdown, figures copied into ``figures``. ``extended`` is the quickstart
    run resumed to twice its epochs, ``long`` the longer recipe's run; either may be missing."""
    from deepspeech2.core.config import load_config
    from deepspeech2.lab.results import format_table

    figures.mkdir(parents=True, exist_ok=True)
    values = {"corpus_table": _corpus_table(data), "train_summary": _train_summary(exp),
              "model_summary": _model_summary(exp), "extended_summary": _train_summary(extended),
              "long_run": _long_run(long, figures.parent / "data" / LONG_SNAPSHOT)}
    epochs = load_config(exp / "config.yaml").train.epochs if (exp / "config.yaml").is_file() else 0
    values["quick_epochs"], values["extended_epochs"] = (str(epochs), str(2 * epochs)) if epochs else ("?", "?")
    results = collect_results(exp)
    values["results_table"] = format_table(results) if results["evals"] else MISSING
    values["goal_line"] = _goal_lines(results, "quickstart")
    values["voice_table"] = format_voices_of_test_sets(voices_of_test_sets(exp / "eval", data / "corpus")) or MISSING
    values["loading_summary"] = _loading_summary(exp)
    study = _read_json(speedup / "speedup.json")      # read once for both summaries
    values["kernel_summary"] = _kernel_summary(study)
    values["pipeline_summary"] = _pipeline_summary(study)
    for src, name in ((exp / "loss_curve.png", "loss_curve.png"), (speedup / "speedup.png", "speedup.png"),
                      (long / "loss_curve.png", "loss_curve_long.png")):
        if src.is_file():
            shutil.copyfile(src, figures / name)
    values["recipe_table"], values["recipe_note"] = _recipe_study(figures.parent / "data" / "recipe.json")
    values["speedup_table"] = (speedup / "speedup.md").read_text(encoding="utf-8") if (speedup / "speedup.md").is_file() else MISSING
    profile = speedup / "profile.md"
    values["profile_table"] = (f"\n   MindSpore Profiler 的逐算子耗时（每步毫秒；不同算子可并行，合计可超过步长）：\n\n"
                               f"{profile.read_text(encoding='utf-8')}" if profile.is_file() and profile.stat().st_size else "")
    check = _read_json(exp / "mindir_check.json")
    values["mindir_check"] = (f"MINDIR 与检查点在 {check['utterances']} 条测试句上的识别结果"
                              f"{'完全一致' if check['identical'] else '不一致'}。") if check else MISSING
    try:
        import mindspore
        ms_version = mindspore.__version__
    except ImportError:
        ms_version = "?"
    values["environment"] = (f"CPU：{cpu_model()}，{_cores()} 核；Python {platform.python_version()}；"
                             f"MindSpore {ms_version}；无 GPU/Ascend。")
    return values


def _cores() -> int:
    import os
    return os.cpu_count() or 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deepspeech2.lab.report", description=__doc__)
    parser.add_argument("--exp", required=True, help="the quickstart run (exp/lab_small)")
    parser.add_argument("--extended", required=True, help="the quickstart run resumed to more epochs")
    parser.add_argument("--long", required=True, help="the longer recipe's run (configs/lab_long.yaml)")
    parser.add_argument("--speedup", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True, help="report directory holding template.md")
    args = parser.parse_args(argv)
    out = Path(args.out)
    values = gather(Path(args.exp), Path(args.speedup), Path(args.data), out / "figures",
                    Path(args.extended), Path(args.long))
    text = Template((out / "template.md").read_text(encoding="utf-8")).safe_substitute(values)
    (out / "README.md").write_text(text, encoding="utf-8")
    print(out / "README.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
