"""Evaluation: every utterance once, the three report files, the lab's printout, MINDIR = checkpoint."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from deepspeech2.decoding.evaluator import set_name
from deepspeech2.inference.evaluate import evaluate
from deepspeech2.data.manifest import read_manifest


def test_set_name():
    assert set_name("x/libri_test_clean_manifest.json") == "test_clean"
    assert set_name("mine.csv") == "mine"


def test_each_utterance_once_and_report_files(tiny_config, tiny_checkpoint, tmp_path):
    cfg = dataclasses.replace(tiny_config, eval=dataclasses.replace(tiny_config.eval, output_dir=str(tmp_path / "ev")))
    [summary] = evaluate(cfg, tiny_checkpoint)
    n = len(read_manifest(cfg.data.test_manifest))
    assert summary["utterances"] == n                     # eval_batch_size 3 does not divide n: no repeats
    recogs = (tmp_path / "ev" / "recogs-test_clean.txt").read_text().splitlines()
    ids = [line.split(":")[0] for line in recogs if "ref=" in line]
    assert len(ids) == len(set(ids)) == n
    assert (tmp_path / "ev" / "errs-test_clean.txt").is_file()
    assert "%WER" in (tmp_path / "ev" / "wer-summary-test_clean.txt").read_text()
    assert summary["cer"] > 0 and summary["wer"] > 0      # an untrained model gets letters and words wrong


@pytest.mark.slow
def test_lab_eval_cli_and_mindir_agree(tiny_config, tiny_checkpoint, tmp_path, repo_root):
    out = tmp_path / "model"
    manifest = tiny_config.data.test_manifest
    exp = subprocess.run([sys.executable, str(repo_root / "export.py"), "--pre_trained_model_path", str(tiny_checkpoint),
                          "--file_name", str(out)], capture_output=True, text=True, timeout=600)
    assert exp.returncode == 0, exp.stderr[-2000:]
    results = {}
    for flag, path in (("--pretrain_ckpt", tiny_checkpoint), ("--mindir", f"{out}.mindir")):
        proc = subprocess.run([sys.executable, str(repo_root / "eval.py"), flag, str(path), "--device_target", "CPU",
                               "--manifest", str(manifest), "--output_dir", str(tmp_path / flag.strip("-")),
                               "data.eval_batch_size=2"], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "Average WER" in proc.stdout and "Average CER" in proc.stdout
        results[flag] = (tmp_path / flag.strip("-") / "recogs-test_clean.txt").read_text()
    assert results["--pretrain_ckpt"] == results["--mindir"]


def test_missing_checkpoint_is_a_clear_error(tmp_path, repo_root):
    proc = subprocess.run([sys.executable, str(repo_root / "eval.py"), "--pretrain_ckpt", str(tmp_path / "no.ckpt"),
                           "--manifest", "x.json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "no.ckpt" in proc.stderr


def test_several_sets_with_one_model_load_equal_one_set_at_a_time(tiny_config, tiny_checkpoint, tmp_path):
    import shutil
    from pathlib import Path

    manifest = tiny_config.data.test_manifest
    other = tmp_path / f"libri_test_other_manifest{Path(manifest).suffix}"    # a second set (same utterances)
    shutil.copy(manifest, other)
    cfg = dataclasses.replace(tiny_config, eval=dataclasses.replace(tiny_config.eval, output_dir=str(tmp_path / "all")))
    together = evaluate(cfg, tiny_checkpoint, decoders=["greedy"], manifests=[manifest, str(other)])
    assert [s["set"] for s in together] == ["test_clean", "test_other"]
    for summary, path in zip(together, (manifest, other)):
        alone_cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, test_manifest=str(path)),
                                        eval=dataclasses.replace(cfg.eval, output_dir=str(tmp_path / "alone")))
        [alone] = evaluate(alone_cfg, tiny_checkpoint, decoders=["greedy"])
        assert (alone["wer"], alone["cer"], alone["utterances"]) == (summary["wer"], summary["cer"], summary["utterances"])
    assert (tmp_path / "all" / "recogs-test_other.txt").read_text() == \
        (tmp_path / "alone" / "recogs-test_other.txt").read_text()
