"""Fast checks of the training loop's guards: the non-finite stop, and pruning + resume with real weights."""
from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from deepspeech2.core.config import load_config
from deepspeech2.training import loop

TINY_MODEL = ["model.conv_channels=4", "model.hidden_size=16", "model.num_layers=1"]


@pytest.fixture(autouse=True, scope="module")
def _cpu():
    from deepspeech2.core.device import init_device

    init_device("CPU", 0, 2)   # the settings every test process uses (see conftest's tiny_config)


class _Value:
    """What the step function returns per output: something with ``asnumpy()``."""

    def __init__(self, value):
        self.value = np.asarray(value)

    def asnumpy(self):
        return self.value


def _fake_run(tmp_path: Path, finite_pattern: list[bool], max_in_row: int) -> SimpleNamespace:
    """A run whose step function reports ``finite_pattern`` in turn; no data, no network."""
    cfg = load_config(None, [f"train.max_nonfinite_in_row={max_in_row}", "train.log_interval=1000",
                             "train.save_interval_steps=1000"])
    outcomes = iter(finite_pattern)

    def step_fn(*_args):
        finite = next(outcomes)
        return _Value(1.0 if finite else np.nan), _Value(1.0), _Value(finite)

    from deepspeech2.model.amp import make_loss_scaler

    return SimpleNamespace(cfg=cfg, out=tmp_path, source=None, net=SimpleNamespace(set_train=lambda _: None),
                           total_steps=len(finite_pattern), steps_per_epoch=1000, is_main=True,
                           ckpt_dir=tmp_path / "checkpoints", utts=[SimpleNamespace(duration=1.0)],
                           step_fn=step_fn, scaler=make_loss_scaler(cfg.train))


@pytest.fixture()
def no_data(monkeypatch):
    batch = (None, None, None, None, _Value([0]))
    dataset = SimpleNamespace(create_tuple_iterator=lambda num_epochs: itertools.repeat(batch))
    monkeypatch.setattr(loop, "create_dataset", lambda *args: dataset)


def test_training_stops_after_max_nonfinite_in_row(tmp_path, no_data):
    status = loop._RunStatus()
    pattern = [False, False, True, False, False, False, True]   # the finite step resets the count
    with pytest.raises(loop.TrainingError, match="3 non-finite steps in a row at step 6"):
        loop._train_loop(_fake_run(tmp_path, pattern, 3), status, 0)
    assert (status.nonfinite_total, status.nonfinite_in_row) == (5, 3)


def test_fewer_nonfinite_steps_in_a_row_do_not_stop(tmp_path, no_data):
    status = loop._RunStatus()
    assert loop._train_loop(_fake_run(tmp_path, [False, False, True] * 3, 3), status, 0) == 9
    assert (status.nonfinite_total, status.nonfinite_in_row) == (6, 0)


def _tiny_training_state(seed: int = 1):
    """(config, vocab, network, optimizer, loss scaler) of the tiny test model."""
    import mindspore

    from deepspeech2.data.vocab import build_vocab
    from deepspeech2.model.amp import make_loss_scaler
    from deepspeech2.model.build import build_network
    from deepspeech2.training.optimizer import build_optimizer

    cfg = load_config(None, TINY_MODEL)
    vocab = build_vocab(cfg)
    mindspore.set_seed(seed)
    net = build_network(cfg, vocab)
    return cfg, vocab, net, build_optimizer(net, cfg), make_loss_scaler(cfg.train)


def test_prune_and_resume_round_trip_with_real_weights(tmp_path):
    """Saved step checkpoints are pruned to keep_last; resume finds the newest and restores its weights,
    optimizer state and loss scale exactly into a freshly built network."""
    import mindspore

    from deepspeech2.model.amp import loss_scale_value
    from deepspeech2.training.checkpoint import (find_resume_checkpoint, prune_checkpoints, restore_training_state,
                                                 save_training_checkpoint)

    _, _, net, optimizer, scaler = _tiny_training_state()
    folder = tmp_path / "checkpoints"
    saved = {}
    for step in (5, 10, 15):
        for p in net.trainable_params():   # different weights in every checkpoint
            p.set_data(mindspore.Tensor(p.asnumpy() + np.float32(step)))
        save_training_checkpoint(folder / f"step_{step}.ckpt", net, optimizer, scaler, {"step": step})
        prune_checkpoints(folder, keep_last=2)
        saved[step] = {p.name: p.asnumpy().copy() for p in net.get_parameters()}
    assert sorted(p.name for p in folder.glob("*.ckpt")) == ["step_10.ckpt", "step_15.ckpt"]
    assert find_resume_checkpoint(tmp_path) == folder / "step_15.ckpt"

    _, _, fresh, fresh_opt, fresh_scaler = _tiny_training_state(seed=2)
    meta = restore_training_state(find_resume_checkpoint(tmp_path), fresh, fresh_opt, fresh_scaler)
    assert meta["step"] == 15
    for p in fresh.get_parameters():
        np.testing.assert_array_equal(p.asnumpy(), saved[15][p.name], err_msg=p.name)
    assert loss_scale_value(fresh_scaler) == loss_scale_value(scaler)


def _fake_checkpoint(folder: Path, name: str, step: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.ckpt").write_bytes(b"weights")
    (folder / f"{name}.yaml").write_text(f"step: {step}\n")
    return folder / f"{name}.ckpt"


def test_pruning_keeps_the_checkpoint_just_written_and_best(tmp_path):
    """A run resumed from step 10 while step 20 and 30 exist writes step 15: it stays, and so does best."""
    from deepspeech2.training.checkpoint import prune_checkpoints

    folder = tmp_path / "checkpoints"
    for step in (10, 20, 30):
        _fake_checkpoint(folder, f"step_{step}", step)
    _fake_checkpoint(folder, "best", 10)
    just_written = _fake_checkpoint(folder, "step_15", 15)
    prune_checkpoints(folder, keep_last=1, protect=just_written)
    assert sorted(p.name for p in folder.glob("*.ckpt")) == ["best.ckpt", "step_15.ckpt"]
    prune_checkpoints(folder, keep_last=2, protect=_fake_checkpoint(folder, "step_16", 16))
    assert sorted(p.name for p in folder.glob("*.ckpt")) == ["best.ckpt", "step_15.ckpt", "step_16.ckpt"]
    with pytest.raises(ValueError, match="keep_last must be >= 1"):
        prune_checkpoints(folder, keep_last=0, protect=just_written)
    assert (folder / "step_15.ckpt").is_file()


def test_partial_files_of_a_failed_save_are_removed_on_the_next_start(tmp_path):
    from deepspeech2.training.checkpoint import remove_partial_files

    folder = tmp_path / "checkpoints"
    kept = _fake_checkpoint(folder, "step_5", 5)
    stale = [folder / ".step_10.ckpt.123.0a1b2c3d.partial.tmp", folder / ".step_10.yaml.123.0a1b2c3e.partial"]
    for path in stale:
        path.write_bytes(b"half")
    assert remove_partial_files(folder) == sorted(stale)
    assert sorted(folder.iterdir()) == [kept, kept.with_suffix(".yaml")]
    assert remove_partial_files(tmp_path / "missing") == []


def test_resumed_run_drops_metrics_records_after_its_checkpoint(tmp_path):
    import json

    path = tmp_path / "metrics.jsonl"
    records = [{"type": "step", "step": s} for s in (1, 2, 3, 4)] + [{"type": "epoch", "step": 4}, {"type": "step", "step": 5}]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert loop.trim_metrics(path, 3) == 3
    assert [json.loads(x)["step"] for x in path.read_text().splitlines()] == [1, 2, 3]
    assert loop.trim_metrics(path, 3) == 0 and loop.trim_metrics(tmp_path / "none.jsonl", 3) == 0


def test_average_of_epoch_checkpoints_is_the_mean_and_never_resumed(tmp_path):
    """ds2-average --run: the mean of the newest epoch checkpoints' network weights (BatchNorm
    statistics too), loadable into the network, without optimizer state, and not a resume candidate."""
    import mindspore

    from deepspeech2.cli.average import main as average_main
    from deepspeech2.model.build import build_network
    from deepspeech2.model.weights import load_weights, read_checkpoint
    from deepspeech2.training.checkpoint import find_resume_checkpoint, read_sidecar, save_training_checkpoint

    cfg, vocab, net, optimizer, scaler = _tiny_training_state()
    folder = tmp_path / "checkpoints"
    saved = {}
    for epoch in (1, 2, 3):
        for p in net.get_parameters():
            p.set_data(mindspore.Tensor(p.asnumpy() + np.float32(epoch)))
        save_training_checkpoint(folder / f"epoch_{epoch}.ckpt", net, optimizer, scaler,
                                 {"step": 10 * epoch, "epoch": epoch})
        saved[epoch] = {p.name: p.asnumpy().copy() for p in net.get_parameters()}
    out = folder / "avg_2.ckpt"
    assert average_main(["--run", str(tmp_path), "--last", "2", "--out", str(out)]) == 0
    averaged = read_checkpoint(out)
    assert not any(name.startswith("optimizer.") for name in averaged)
    assert sorted(averaged) == sorted(saved[3])
    for name, value in averaged.items():
        np.testing.assert_allclose(value.asnumpy(), (saved[2][name] + saved[3][name]) / 2, rtol=1e-6, err_msg=name)
    meta = read_sidecar(out)
    assert meta["averaged_from"] == [str(folder / "epoch_2.ckpt"), str(folder / "epoch_3.ckpt")]
    assert meta["last_step"] == 30 and "step" not in meta
    assert find_resume_checkpoint(tmp_path) == folder / "epoch_3.ckpt"
    mindspore.set_seed(2)
    assert load_weights(build_network(cfg, vocab), out).complete
    assert average_main(["--run", str(tmp_path), "--last", "4", "--out", str(out)]) == 2   # only 3 exist
