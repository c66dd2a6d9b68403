"""Training: loss goes down, exact resume, signals save a checkpoint, the bash launcher runs."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deepspeech2.model.weights import load_weights
from deepspeech2.training.checkpoint import find_resume_checkpoint, read_sidecar

PYTHON = sys.executable


def _run_train(cfg_overrides: list[str], cwd: Path, timeout: int = 600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "deepspeech2.cli.train", *cfg_overrides], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, **kw)


def _overrides(cfg) -> list[str]:
    """Every key of ``cfg`` as a dotted ``section[.sub].key=value`` override."""
    def flatten(tree: dict, prefix: str) -> list[str]:
        out = []
        for k, v in tree.items():
            if isinstance(v, dict):
                out += flatten(v, f"{prefix}{k}.")
            elif isinstance(v, bool):
                out.append(f"{prefix}{k}={'true' if v else 'false'}")
            elif v != "":
                out.append(f"{prefix}{k}={v}")
        return out
    return flatten(dataclasses.asdict(cfg), "")


def _step_losses(run_dir: Path) -> dict[int, float]:
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in records if r["type"] == "step"}


@pytest.mark.slow
def test_loss_goes_down_and_checkpoints_are_written(tiny_config, tmp_path):
    cfg = dataclasses.replace(tiny_config, train=dataclasses.replace(
        tiny_config.train, epochs=20, max_steps=36, save_interval_steps=10, keep_last=2))
    proc = _run_train(_overrides(cfg), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = Path(cfg.train.output_dir)
    losses = _step_losses(run)
    assert len(losses) == 36
    first, last = sum(losses[s] for s in range(1, 7)) / 6, sum(losses[s] for s in range(31, 37)) / 6
    assert last < 0.7 * first, (first, last)
    ckpts = sorted(p.name for p in (run / "checkpoints").glob("*.ckpt"))
    assert "best.ckpt" in ckpts
    assert len([c for c in ckpts if c != "best.ckpt"]) == 2                  # keep_last
    meta = read_sidecar(find_resume_checkpoint(run))
    assert meta["step"] == 36 and meta["config"]["model"]["hidden_size"] == 32
    epochs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    dev = [r for r in epochs if r["type"] == "epoch"]
    assert dev and all("wer" in r and "loss" in r for r in dev)            # dev loss + WER each epoch
    best = read_sidecar(run / "checkpoints" / "best.ckpt")["metrics"]
    assert best["wer"] == min(r["wer"] for r in dev)                         # best chosen on dev
    assert (run / "config.yaml").is_file() and (run / "train.log").is_file()
    steps = [r for r in epochs if r["type"] == "step"]
    for r in steps:                     # throughput with data loading included, and the cores kept busy
        assert 0 < r["wall_audio_s_per_s"] and 0 < r["cores_busy"] <= (os.cpu_count() or 1) + 0.5
    assert sorted(r["wall_audio_s_per_s"] for r in steps)[len(steps) // 2] <= \
        sorted(r["audio_s_per_s"] for r in steps)[len(steps) // 2] * 1.05     # medians: the step alone is faster


@pytest.mark.slow
def test_resume_is_bit_exact(tiny_config, tmp_path):
    base = dataclasses.replace(tiny_config.train, epochs=3, save_interval_steps=5, keep_last=10)
    full = dataclasses.replace(tiny_config, train=dataclasses.replace(base, output_dir=str(tmp_path / "full")))
    part = dataclasses.replace(tiny_config, train=dataclasses.replace(base, output_dir=str(tmp_path / "part"),
                                                                       max_steps=10))
    assert _run_train(_overrides(full), tmp_path).returncode == 0
    assert _run_train(_overrides(part), tmp_path).returncode == 0
    resumed = dataclasses.replace(part, train=dataclasses.replace(part.train, max_steps=0,
                                                                   resume=str(tmp_path / "part")))
    proc = _run_train(_overrides(resumed), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = _step_losses(tmp_path / "full"), _step_losses(tmp_path / "part")
    assert len(a) > 10 and set(a) == set(b)
    assert [a[s] for s in sorted(a)] == [b[s] for s in sorted(b)]        # bit-identical, not approx


@pytest.mark.slow
def test_sigterm_saves_a_loadable_checkpoint(tiny_config, tmp_path):
    cfg = dataclasses.replace(tiny_config, train=dataclasses.replace(
        tiny_config.train, epochs=200, save_interval_steps=100000))
    proc = subprocess.Popen([PYTHON, "-m", "deepspeech2.cli.train", *_overrides(cfg)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    metrics = Path(cfg.train.output_dir) / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    ckpt = find_resume_checkpoint(cfg.train.output_dir)
    assert read_sidecar(ckpt)["metrics"] == {"interrupted": True}
    from deepspeech2.data.vocab import build_vocab
    from deepspeech2.model.build import build_network
    net = build_network(cfg, build_vocab(cfg))
    assert not load_weights(net, ckpt).missing


def test_missing_manifest_is_a_clear_error(tmp_path):
    proc = _run_train([f"train.output_dir={tmp_path}"], tmp_path, timeout=120)
    assert proc.returncode == 1 and "not set: data.train_manifest (" in proc.stderr


def test_preset_alone_names_every_missing_key(tmp_path, repo_root):
    proc = _run_train(["--config", str(repo_root / "configs" / "lab_small.yaml")], tmp_path, timeout=120)
    assert proc.returncode == 1 and "not set: data.train_manifest, train.output_dir" in proc.stderr


@pytest.mark.slow
def test_bash_launcher_from_another_directory(tiny_config, tmp_path, repo_root):
    cfg_file = tmp_path / "tiny.yaml"
    import yaml
    cfg = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, max_steps=2))
    cfg_file.write_text(yaml.safe_dump(dataclasses.asdict(cfg)))
    env = {**os.environ, "CONFIG": str(cfg_file), "LOG": str(tmp_path / "launcher.log"),
           "DS2_VENV": str(Path(PYTHON).parents[1])}
    proc = subprocess.run(["bash", str(repo_root / "scripts" / "run_standalone_train_cpu.sh")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    assert "training finished" in (tmp_path / "launcher.log").read_text()
    assert (Path(cfg.train.output_dir) / "checkpoints" / "step_2.ckpt").is_file()
    bad = subprocess.run(["bash", str(repo_root / "scripts" / "run_standalone_train_cpu.sh"), "/nope.ckpt"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "pretrained checkpoint not found: /nope.ckpt" in bad.stderr
