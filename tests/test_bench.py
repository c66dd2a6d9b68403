"""ds2-bench: records with the fields the speed-up study reads; overrides anywhere on the line."""
from __future__ import annotations

import json

import pytest

from deepspeech2.cli.bench import main
from deepspeech2.lab.bench import gemm_gflops

TINY = ["model.conv_channels=2", "model.hidden_size=16", "model.num_layers=1", "train.cpu_threads=2"]


def test_gemm_reports_both_libraries():
    rates = gemm_gflops(repeats=1, size=256, threads=2)
    assert rates["gflops"] == max(rates["numpy_gflops"], rates["mindspore_gflops"]) > 0


def test_train_step_record_with_overrides_between_and_after_options(tmp_path):
    out = tmp_path / "records.jsonl"
    assert main(["train-step", "--json", str(out), "--label", "tiny", *TINY[:2], "--batch", "2",
                 "--seconds", "1.5", "--steps", "2", *TINY[2:], "train.mode=pynative"]) == 0
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["label"] == "tiny" and record["mode"] == "pynative" and record["model"] == "lstm 1x16"
    assert record["batch"] == 2 and len(record["step_times"]) == 2
    assert record["audio_s_per_s"] == pytest.approx(2 * 1.5 / record["s_per_step"])
    assert record["peak_rss_gb"] > 0 and record["epoch_hours"] > 0


def test_stray_arguments_are_refused(capsys):
    with pytest.raises(SystemExit):
        main(["train-step", "model.hidden_size=16", "--batch", "2", "--no-such-flag"])
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:             # config errors: one line, exit 2
        main(["train-step", "--batch", "2", "not-an-override"])
    assert exit_.value.code == 2 and "not of the form section.key=value" in capsys.readouterr().err
