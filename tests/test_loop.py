"""Fast checks of the training loop's bookkeeping: epoch fields, best-checkpoint order, pruning and resume lookup."""
import math

import yaml

from deepspeech2.training.checkpoint import find_resume_checkpoint, prune_checkpoints
from deepspeech2.training.loop import _dev_key, epoch_fields


def test_epoch_means_epochs_completed():
    assert epoch_fields(0, 10) == {"epoch": 0, "epoch_progress": 0.0}
    assert epoch_fields(9, 10) == {"epoch": 0, "epoch_progress": 0.9}
    assert epoch_fields(10, 10) == {"epoch": 1, "epoch_progress": 1.0}
    assert epoch_fields(25, 10)["epoch"] == 2


def test_best_checkpoint_order_is_dev_wer_then_dev_loss():
    keys = {"a": _dev_key({"epoch": 1, "wer": 1.0, "loss": 300.0}), "b": _dev_key({"epoch": 2, "wer": 1.0, "loss": 250.0}),
            "c": _dev_key({"epoch": 3, "wer": 0.9, "loss": 400.0})}
    assert sorted(keys, key=keys.get) == ["c", "b", "a"]
    no_dev = [_dev_key({"epoch": e}) for e in (1, 2, 3)]      # without a dev set the latest epoch is best
    assert no_dev == sorted(no_dev, reverse=True) and no_dev[0][0] == -math.inf


def _fake_checkpoint(folder, name, step):
    (folder / f"{name}.ckpt").write_bytes(b"weights")
    (folder / f"{name}.yaml").write_text(yaml.safe_dump({"step": step}))


def test_prune_keeps_newest_and_best_and_resume_finds_the_newest(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for step in (5, 10, 15, 20):
        _fake_checkpoint(folder, f"step_{step}", step)
    _fake_checkpoint(folder, "best", 5)
    (folder / ".step_25.ckpt.1.abcd.partial.ckpt").write_bytes(b"half")   # a writer killed mid-save
    prune_checkpoints(folder, keep_last=2)
    assert sorted(p.name for p in folder.glob("*.ckpt") if not p.name.startswith(".")) == [
        "best.ckpt", "step_15.ckpt", "step_20.ckpt"]
    assert not (folder / "step_10.yaml").exists()
    assert find_resume_checkpoint(tmp_path) == folder / "step_20.ckpt"
