"""Data-parallel training with msrun on 2 CPU workers: both ranks end with identical weights."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml


@pytest.mark.slow
def test_two_cpu_ranks_stay_in_sync(tiny_config, tmp_path, repo_root):
    cfg = dataclasses.replace(tiny_config, train=dataclasses.replace(
        tiny_config.train, save_interval_steps=1, eval_every_epoch=False))
    cfg_file = tmp_path / "dist.yaml"
    cfg_file.write_text(yaml.safe_dump(dataclasses.asdict(cfg)))
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "CONFIG": str(cfg_file), "LOG_DIR": str(tmp_path / "logs"), "MASTER_PORT": "8127",
           "PATH": venv_bin + os.pathsep + os.environ["PATH"], "DS2_VENV": str(Path(sys.executable).parents[1])}
    # the step limit comes as an override after the launcher's --is_distributed switch (it once swallowed it)
    proc = subprocess.run(["bash", str(repo_root / "scripts" / "run_distribute_train_cpu.sh"), "2", "",
                           "train.max_steps=2"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=900)
    logs = "".join(p.read_text() for p in sorted((tmp_path / "logs").glob("worker_*.log")))
    assert proc.returncode == 0, proc.stderr[-2000:] + logs[-3000:]
    out = Path(cfg.train.output_dir)
    digests = [(out / f"weights_rank{r}.sha256").read_text() for r in (0, 1)]
    assert digests[0] == digests[1]
    assert "rank 1 of 2" in logs and "rank 0 of 2" in logs
    assert "2 total steps" in logs
    ckpts = list((out / "checkpoints").glob("step_*.ckpt"))
    assert ckpts                                                # rank 0 saved
