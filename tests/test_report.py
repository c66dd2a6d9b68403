"""The lab report generator fills every placeholder from run files and marks missing runs."""
from __future__ import annotations

import json
import os
import re
import shutil
from datetime import datetime
from pathlib import Path

from deepspeech2.core.config import load_config, save_config
from deepspeech2.core.device import cpu_model
from deepspeech2.lab.report import LONG_SNAPSHOT, LONG_SNAPSHOT_NOTE, MISSING, main


def _fake_run(exp: Path, cer: float = 0.1234, data: Path | None = None, dev_losses=(123.4,)) -> None:
    """Files a quickstart run writes, with known numbers."""
    (exp / "eval").mkdir(parents=True)
    (exp / "baseline").mkdir()
    manifest = f"data.train_manifest={data / 'LibriSpeech_dataset' / 'train.json'}" if data else "train.epochs=4"
    cfg = load_config(None, ["model.conv_channels=2", "model.hidden_size=16", "model.num_layers=1",
                             "train.epochs=4", manifest])
    save_config(cfg, exp / "config.yaml")
    records = [{"type": "step", "step": s, "epoch": 0, "loss": 500.0 - s, "lr": 1e-3, "grad_norm": 1.0,
                "audio_s_per_s": 20.0 + s, "step_time": 1.0, "loss_scale": 1.0,
                "wall_audio_s_per_s": 0.9 * (20.0 + s), "cores_busy": 1.7 + s / 100} for s in (10, 20, 30)]
    records += [{"type": "epoch", "step": 30 * e, "epoch": e, "wer": 0.5, "cer": 0.25, "loss": loss}  # epochs done
                for e, loss in enumerate(dev_losses, start=1)]
    (exp / "metrics.jsonl").write_text("\n".join(map(json.dumps, records)) + "\n")
    summary = {"wer": 0.4321, "cer": cer, "utterances": 29, "rtf": 0.05, "decoder": "greedy"}
    (exp / "eval" / "summary-test_clean.json").write_text(json.dumps(summary))
    (exp / "baseline" / "pocketsphinx.json").write_text(json.dumps({**summary, "wer": 0.6961, "set": "test_clean"}))
    (exp / "stage_times.tsv").write_text("corpus\t52\ntrain\t640\n")
    (exp / "mindir_check.json").write_text(json.dumps({"identical": True, "utterances": 29}))


def _fake_data(data: Path, reused: bool = False) -> None:
    """Files corpus generation and preparation write, with known numbers."""
    (data / "corpus").mkdir(parents=True)
    (data / "LibriSpeech_dataset").mkdir()
    (data / "corpus" / "generation_report.json").write_text(json.dumps({
        "splits": {"train-clean-100": {"hours": 1.5, "utterances": 455, "speakers": 45,
                                       "duration_seconds": {"median": 11.8}, "wall_seconds": 40.0,
                                       "cpu_seconds": 81.0},
                   "dev-clean": {"hours": 0.1, "utterances": 31, "speakers": 3,
                                 "duration_seconds": {"median": 12.0}, "wall_seconds": 3.0, "cpu_seconds": 6.0}},
        # a re-run that reused every split records no rates for itself (None), only the split records
        "this_run": {"generated_splits": [] if reused else ["train-clean-100", "dev-clean"], "audio_hours": 0,
                     "audio_hours_per_wall_minute": None, "cpu_seconds_per_audio_hour": None}}))
    (data / "LibriSpeech_dataset" / "prepare_summary.json").write_text(json.dumps({
        "files": {"prepared": 573, "converted": 573, "reused": 0}, "audio_hours": {"prepared": 1.92},
        "wall_time_s": 2.9, "files_per_s": 196.1, "audio_hours_per_min": 39.5}))


def _report(tmp_path: Path, repo_root, long_run: bool) -> str:
    (tmp_path / "report").mkdir()
    return _report_into(tmp_path, repo_root, long_run)


def _report_into(tmp_path: Path, repo_root, long_run: bool = False) -> str:
    out = tmp_path / "report"
    shutil.copyfile(Path(repo_root) / "report" / "template.md", out / "template.md")
    exp = tmp_path / "exp" / "lab_small"
    _fake_run(exp)
    data = tmp_path / "data"
    _fake_data(data)
    if long_run:
        _fake_data(tmp_path / "data_long", reused=True)
        _fake_run(tmp_path / "exp" / "lab_long", cer=0.0432, data=tmp_path / "data_long",
                  dev_losses=(300.0, 250.0, 260.0))
    return _generate(tmp_path)


def _generate(tmp_path: Path) -> str:
    """Run the generator on the runs under ``tmp_path``; the report's text."""
    out = tmp_path / "report"
    assert main(["--exp", str(tmp_path / "exp" / "lab_small"), "--extended", str(tmp_path / "exp" / "lab_small_more"),
                 "--long", str(tmp_path / "exp" / "lab_long"), "--speedup", str(tmp_path / "none"),
                 "--data", str(tmp_path / "data"), "--out", str(out)]) == 0
    return (out / "README.md").read_text(encoding="utf-8")


def test_report_is_filled_from_run_files(tmp_path, repo_root):
    text = _report(tmp_path, repo_root, long_run=False)
    assert not re.search(r"\$[a-z_]+", text)                      # every placeholder substituted
    assert "43.21" in text and "12.34" in text and "69.61" in text  # our WER/CER and pocketsphinx's
    assert "第 1 轮结束：dev 损失 123.40，WER 50.00%，CER 25.00%" in text
    assert "dev 损失最低在第 1 轮（共 1 轮），仍在下降。" in text
    assert "test-clean WER 43.21%（目标 ≤ 34.00%）：**未达到**" in text
    assert "test-clean CER 12.34%（目标 ≤ 12.00%）：**未达到**" in text
    assert "test-other CER：未评估" in text
    assert "一致" in text and "4 轮" in text                          # MINDIR check, trained preset
    assert "| train-clean-100 | 1.50 | 455 | 45 | 11.8 |" in text and "573 个文件" in text
    assert "合成：1.60 小时音频，墙钟 43 秒，2.23 小时音频/分钟，每小时音频 54 CPU 秒。" in text
    assert "训练平均占用 1.90 个核，含数据加载在内的吞吐是纯训练步的 90.0%（3 条日志的中位数" in text
    assert text.count(MISSING) >= 3                   # speed-up study, extended and long runs not run


def test_report_checks_the_long_recipe_goal(tmp_path, repo_root):
    text = _report(tmp_path, repo_root, long_run=True)
    assert "test-clean CER 4.32%（目标 ≤ 5.00%）：达到" in text      # the long run's test-clean CER, checked
    assert "test-clean CER 12.34%（目标 ≤ 5.00%）" not in text       # not the quickstart's
    assert text.count("| train-clean-100 | 1.50 | 455 | 45 | 11.8 |") == 2   # its corpus table too
    assert "每小时音频 54 CPU 秒（本次运行复用了先前合成的语料）。" in text      # reused corpus: no crash
    assert "dev 损失最低在第 2 轮（共 3 轮）之后回升（过拟合）。" in text


def test_report_renders_the_committed_recipe_study(tmp_path, repo_root):
    (tmp_path / "report" / "data").mkdir(parents=True)
    shutil.copyfile(Path(repo_root) / "report" / "data" / "recipe.json", tmp_path / "report" / "data" / "recipe.json")
    text = _report_into(tmp_path, repo_root)
    assert "| 1 reference" in text and "dev CER % by epoch" in text and "测量条件：" in text


def test_long_run_section_is_kept_for_reports_made_without_it(tmp_path, repo_root):
    (tmp_path / "report").mkdir()
    _report_into(tmp_path, repo_root, long_run=True)
    run_day = datetime(2026, 1, 2, 12).timestamp()                   # the long run finished on another day
    os.utime(tmp_path / "exp" / "lab_long" / "metrics.jsonl", (run_day, run_day))
    with_long = _generate(tmp_path)
    snapshot = tmp_path / "report" / "data" / LONG_SNAPSHOT
    assert "test-clean CER 4.32%（目标 ≤ 5.00%）：达到" in snapshot.read_text(encoding="utf-8")
    assert snapshot.read_text(encoding="utf-8").startswith("（2026-01-02 运行，CPU：")   # the run's date and a CPU
    for runs in ("exp", "data", "data_long"):                         # the hour-long run is gone
        shutil.rmtree(tmp_path / runs)
    without = _report_into(tmp_path, repo_root, long_run=False)
    assert LONG_SNAPSHOT_NOTE in without and "test-clean CER 4.32%（目标 ≤ 5.00%）：达到" in without
    assert "test-clean CER 4.32%" in with_long and LONG_SNAPSHOT_NOTE not in with_long


def test_report_names_the_cpu_model(tmp_path, repo_root):
    text = _report(tmp_path, repo_root, long_run=False)
    assert f"CPU：{cpu_model()}，" in text


def test_cpu_model_reads_the_kernels_model_name(tmp_path, monkeypatch):
    from deepspeech2.core import device

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Test CPU 9000 @ 1.00GHz\nflags\t\t: fpu avx2 avx512f\n")
    monkeypatch.setattr(device, "CPUINFO", str(info))
    assert device.cpu_model() == "Test CPU 9000 @ 1.00GHz (AVX-512)" and device.has_avx512()
    info.write_text("processor\t: 0\nmodel name\t: VM CPU\nflags\t\t: fpu avx512f avx512_bf16 amx_tile avx2\n")
    assert device.cpu_model() == "VM CPU (AVX-512, AVX512-BF16, AMX)"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512fake\n")
    assert device.cpu_model().endswith("(AVX2)") and not device.has_avx512()
    info.write_text("processor\t: 0\nmodel name\t: Old CPU\nflags\t\t: fpu sse2\n")
    assert device.cpu_model() == "Old CPU"


def test_report_breaks_the_test_sets_down_by_voice(tmp_path, repo_root):
    """Recogs of test-clean plus the split's archive → a per-voice table in the report."""
    import tarfile

    from deepspeech2.decoding.metrics import score_utterance, write_recogs

    _report(tmp_path, repo_root, long_run=False)
    exp, corpus = tmp_path / "exp" / "lab_small", tmp_path / "data" / "corpus"
    write_recogs(exp / "eval" / "recogs-test_clean-beam.txt",
                 [score_utterance("7501-750101-0000", "A CAT", "A CAT"), score_utterance("7502-750201-0000", "DOG", "DOT")])
    speakers = tmp_path / "SPEAKERS.TXT"
    speakers.write_text("; ID | SEX | SUBSET | MINUTES | NAME\n7501 | F | test-clean | 1.00 | flite slt stretch 1.00 warp 1.000\n"
                        "7502 | M | test-clean | 1.00 | espeak-ng en-us+m3 170 wpm pitch 40 warp 1.010\n", encoding="utf-8")
    with tarfile.open(corpus / "test-clean.tar.gz", "w:gz") as tar:
        tar.add(speakers, arcname="LibriSpeech/SPEAKERS.TXT")
    text = _generate(tmp_path)
    assert "**test_clean** (beam):" in text
    assert "| espeak-ng en-us | 1 | 1 | 100.00 | 33.33 |\n| flite slt | 1 | 1 | 0.00 | 0.00 |" in text
