"""ds2-bench: records with the fields the speed-up study reads; overrides anywhere on the line."""
from __future__ import annotations

import json

import pytest

from deepspeech2.cli.bench import main
from deepspeech2.core.device import cpu_model
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
    assert record["cpu"] == cpu_model()                     # every speed figure names its CPU
    assert record["rnn_impl"] == "custom"                   # the kernel that ran is part of the setting


def test_speedup_table_names_the_cpus_of_its_records(tmp_path):
    from deepspeech2.lab.speedup import build_table, _markdown

    step = {"bench": "train-step", "label": "a", "model": "lstm 3x256", "batch": 8, "seconds": 10.0, "s_per_step": 1.0,
            "audio_s_per_s": 80.0, "epoch_hours": 1.3, "gflops": 40.0, "peak_rss_gb": 1.3, "cpu": "CPU A"}
    records = [{"bench": "gemm", "gflops": 100.0, "cpu": "CPU A"}, step, {**step, "label": "b", "cpu": "CPU B"}]
    assert _markdown(build_table(records)).splitlines()[0] == "CPU: CPU A / CPU B"
    assert _markdown(build_table([step | {"cpu": None}])).splitlines()[0] == "CPU: not recorded"


def test_own_lstm_kernel_is_paired_with_the_fused_one_of_the_same_setting():
    from deepspeech2.lab.report import _kernel_summary
    from deepspeech2.lab.speedup import build_table

    step = {"bench": "train-step", "label": "fused", "model": "lstm 5x1024", "batch": 8, "seconds": 10.0,
            "mode": "graph", "amp_level": "O0", "threads": 2, "pad_to": 0, "s_per_step": 10.0, "audio_s_per_s": 8.0,
            "epoch_hours": 12.0, "gflops": 40.0, "peak_rss_gb": 8.0, "cpu": "CPU A", "rnn_impl": "fused"}
    custom = {**step, "label": "own", "rnn_impl": "custom", "s_per_step": 11.0, "peak_rss_gb": 5.0}
    records = [step, {**step, "label": "O2", "amp_level": "O2", "s_per_step": 9.0}, custom,
               {**custom, "batch": 16}]                 # custom at batch 16 has no fused partner
    table = build_table(records)
    assert table["kernel_pairs"] == [{"model": "lstm 5x1024", "batch": 8, "fused_s_per_step": 10.0,
                                      "custom_s_per_step": 11.0, "fused_peak_rss_gb": 8.0, "custom_peak_rss_gb": 5.0}]
    assert _kernel_summary(json.loads(json.dumps(table))) == "lstm 5x1024（批大小 8）每步 11.00 秒对 10.00 秒（1.10 倍），峰值内存 5.00 GB 对 8.00 GB"
    assert build_table([{k: v for k, v in step.items() if k != "rnn_impl"}])["kernel_pairs"] == []   # old records
    assert build_table([{**step, "rnn_impl": "auto"}, custom])["kernel_pairs"] == []


def test_report_says_which_worker_kind_was_faster():
    from deepspeech2.lab.report import MISSING, _pipeline_summary
    from deepspeech2.lab.speedup import build_table

    def data(processes, workers, rate):
        return {"bench": "data", "processes": processes, "workers": workers, "utts_per_s": rate / 4,
                "audio_s_per_s": rate}

    for records, expected in (([data(True, 1, 2000.0), data(True, 2, 3000.0), data(False, 2, 4000.0)], "线程更快（进程 3000、线程 4000"),
                              ([data(True, 2, 5000.0), data(False, 2, 4000.0)], "进程更快（进程 5000、线程 4000"),
                              ([data(True, 2, 5000.0)], MISSING)):
        assert expected in _pipeline_summary(json.loads(json.dumps(build_table(records))))


def test_stray_arguments_are_refused(capsys):
    with pytest.raises(SystemExit):
        main(["train-step", "model.hidden_size=16", "--batch", "2", "--no-such-flag"])
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:             # config errors: one line, exit 2
        main(["train-step", "--batch", "2", "not-an-override"])
    assert exit_.value.code == 2 and "not of the form section.key=value" in capsys.readouterr().err


def test_op_times_sums_profile_csvs_per_step(tmp_path):
    from deepspeech2.lab.bench import op_times

    folder = tmp_path / "prof" / "run" / "FRAMEWORK"
    folder.mkdir(parents=True)
    (folder / "cpu_op_type_info_0.csv").write_text(
        "op_type,type_occurrences,execution_frequency(per-step),total_compute_time,avg_time(ms),percent\n"
        "LSTM,6,3,60.0,10.0,0.5\nIm2Col,4,2,8.0,2.0,0.1\n")
    assert op_times(tmp_path / "prof", steps=2) == {"LSTM": 30.0, "Im2Col": 4.0}


@pytest.mark.slow
def test_profiled_train_step_names_the_ops_that_cost_time(tmp_path, repo_root):
    import subprocess
    import sys

    out = tmp_path / "records.jsonl"
    subprocess.run([sys.executable, "-m", "deepspeech2.cli.bench", "train-step", "--json", str(out), "--batch", "2",
                    "--seconds", "1.5", "--steps", "2", "--profile", str(tmp_path / "profile"), *TINY,
                    "model.conv_stack=small_t4", "model.conv_impl=matmul"], check=True, capture_output=True,
                   cwd=repo_root)
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    ops = record["op_ms_per_step"]
    assert ops and all(ms >= 0 for ms in ops.values())
    assert "Custom" in ops and "LSTM" not in ops                                # our LSTM kernel ran (auto)
    assert "Im2Col" in ops and "Conv2D" not in ops                                # the MatMul conv ran


def test_data_pipeline_with_and_without_the_training_augmentation(tmp_path, prepared_corpus):
    out = tmp_path / "records.jsonl"
    manifest = str(prepared_corpus / "libri_train_manifest.json")
    common = ["data", "--json", str(out), "--manifest", manifest, "--workers", "1", "--batches", "2",
              "data.batch_size=2", "data.augment.speed_perturb=0.1", "data.augment.noise_prob=1.0"]
    assert main(common) == 0 and main([*common, "--augment"]) == 0
    plain, augmented = [json.loads(line) for line in out.read_text().splitlines()]
    assert (plain["augment"], augmented["augment"]) == (False, True)
    for record in (plain, augmented):
        assert record["workers"] == 1 and record["audio_s_per_s"] > 0 and record["cpu"] == cpu_model()
