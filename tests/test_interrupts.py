"""Interrupts: a signal to the launcher's whole process group (Ctrl-C, a scheduler) saves a checkpoint,
exits 128+signal and the run resumes from it; the metrics file has each step once."""
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
import yaml

from deepspeech2.training.checkpoint import find_resume_checkpoint, read_sidecar

PYTHON = sys.executable


def _wait_for(path: Path, text: str, proc: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.is_file() and text in path.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise AssertionError(f"launcher exited ({proc.returncode}) before {text!r} appeared")
        time.sleep(0.3)
    raise AssertionError(f"{text!r} did not appear in {path}")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_to_the_launcher_group_saves_and_resumes(tiny_config, tmp_path, repo_root, sig):
    cfg = dataclasses.replace(
        tiny_config, data=dataclasses.replace(tiny_config.data, num_workers=2),   # worker processes too
        train=dataclasses.replace(tiny_config.train, epochs=200, save_interval_steps=100000))
    cfg_file, log = tmp_path / "tiny.yaml", tmp_path / "launcher.log"
    cfg_file.write_text(yaml.safe_dump(dataclasses.asdict(cfg)))
    env = {**os.environ, "CONFIG": str(cfg_file), "LOG": str(log), "DS2_VENV": str(Path(PYTHON).parents[1])}
    with open(tmp_path / "console.txt", "w") as console:
        proc = subprocess.Popen(["bash", str(repo_root / "scripts" / "run_standalone_train_cpu.sh")], cwd=tmp_path,
                                env=env, stdout=console, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_for(log, "step 1/", proc)
            os.killpg(proc.pid, sig)                    # the whole group: bash, tee, python, data workers
            assert proc.wait(timeout=300) == 128 + sig, log.read_text()[-3000:]
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    assert f"received {signal.Signals(sig).name}" in text and "Broken pipe" not in text
    assert "training finished" in text                   # tee survived: the log has the end of the run
    run = Path(cfg.train.output_dir)
    ckpt = find_resume_checkpoint(run)
    meta = read_sidecar(ckpt)
    assert meta["metrics"] == {"interrupted": True}
    stopped = meta["step"]

    resumed = subprocess.run([PYTHON, "-m", "deepspeech2.cli.train", "--config", str(cfg_file), "--resume", str(run),
                              f"train.max_steps={stopped + 2}"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from {ckpt} at step {stopped}" in resumed.stderr
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()
             if json.loads(x)["type"] == "step"]
    assert steps == list(range(1, stopped + 3))          # every step once, in order
