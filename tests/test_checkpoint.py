"""Loading weights: zoo-style prefixes and optimizer state, mismatches, unreadable files."""
from __future__ import annotations

import numpy as np
import pytest

mindspore = pytest.importorskip("mindspore")
from mindspore import Tensor  # noqa: E402

from deepspeech2.model.weights import CheckpointError, load_weights  # noqa: E402
from deepspeech2.core.config import FeatureConfig, ModelConfig  # noqa: E402
from deepspeech2.model.network import DeepSpeech2  # noqa: E402

mindspore.set_device("CPU")
SMALL = ModelConfig(hidden_size=32, num_layers=2, conv_channels=4)   # the zoo's naming, small sizes


def _net(cfg: ModelConfig = SMALL, seed: int = 0) -> DeepSpeech2:
    mindspore.set_seed(seed)
    return DeepSpeech2(cfg, FeatureConfig(), 29)


def _values(net) -> dict[str, np.ndarray]:
    return {name: p.asnumpy().copy() for name, p in net.parameters_and_names()}


def _zoo_style_file(path, values: dict[str, np.ndarray], drop=(), extra=None) -> None:
    """What the zoo's training writes: ``network.network.`` names plus Adam state."""
    rng = np.random.default_rng(0)
    entries = [{"name": "network.network." + k, "data": Tensor(v + rng.standard_normal(v.shape).astype(v.dtype))}
               for k, v in values.items() if k not in drop]
    for k, v in list(values.items())[:3]:
        entries.append({"name": "optimizer.moment1.network.network." + k, "data": Tensor(np.zeros_like(v))})
        entries.append({"name": "moment2." + k, "data": Tensor(np.zeros_like(v))})
    for k in ("global_step", "learning_rate", "beta1_power", "beta2_power"):
        entries.append({"name": f"optimizer.{k}", "data": Tensor(np.array([1.0], np.float32))})
    for k, v in (extra or {}).items():
        entries.append({"name": k, "data": Tensor(v)})
    mindspore.save_checkpoint(entries, str(path))


def test_loads_zoo_style_checkpoint(tmp_path):
    path = tmp_path / "DeepSpeech.ckpt"
    _zoo_style_file(path, _values(_net(seed=1)))
    saved = {k[len("network.network."):]: v.asnumpy() for k, v in mindspore.load_checkpoint(str(path)).items()
             if k.startswith("network.network.")}
    net = _net(seed=2)
    report = load_weights(net, path)
    assert report.complete and report.stripped_prefixes == ["network.network."]
    assert sorted(report.loaded) == sorted(saved) == sorted(_values(net))
    assert len(report.ignored) == 3 * 2 + 4
    for name, value in _values(net).items():
        np.testing.assert_array_equal(value, saved[name])           # BatchNorm statistics included


def test_own_checkpoint_without_prefix(tmp_path):
    source = _net(seed=3)
    mindspore.save_checkpoint(source, str(tmp_path / "own.ckpt"))
    net = _net(seed=4)
    report = load_weights(net, tmp_path / "own.ckpt")
    assert report.complete and report.stripped_prefixes == []
    for name, value in _values(net).items():
        np.testing.assert_array_equal(value, _values(source)[name])


def test_shape_mismatch_raises_unless_partial(tmp_path):
    path = tmp_path / "bigger.ckpt"
    _zoo_style_file(path, _values(_net(ModelConfig(hidden_size=48, num_layers=2, conv_channels=4))))
    net = _net()
    before = _values(net)
    with pytest.raises(CheckpointError, match=r"bigger\.ckpt.*shape mismatch.*RNN\.lstms\.0\.weight_ih_l0"):
        load_weights(net, path)
    for name, value in _values(net).items():                    # nothing copied on error
        np.testing.assert_array_equal(value, before[name])
    report = load_weights(net, path, allow_partial=True)
    assert "conv.conv1.weight" in report.loaded and "RNN.lstms.0.weight_hh_l0" in report.shape_mismatched
    assert not np.array_equal(_values(net)["conv.conv1.weight"], before["conv.conv1.weight"])
    np.testing.assert_array_equal(_values(net)["fc.module.weight"], before["fc.module.weight"])


def test_missing_and_unexpected_are_reported(tmp_path):
    path = tmp_path / "odd.ckpt"
    _zoo_style_file(path, _values(_net()), drop=("fc.module.weight",),
                    extra={"network.network.RNN.norms.0.gamma": np.ones(32, np.float32)})
    with pytest.raises(CheckpointError) as err:
        load_weights(_net(), path)
    message = str(err.value)
    assert "odd.ckpt" in message and "missing: fc.module.weight" in message
    assert "unexpected: network.network.RNN.norms.0.gamma" in message
    report = load_weights(_net(), path, allow_partial=True)
    assert report.missing == ["fc.module.weight"] and report.unexpected == ["network.network.RNN.norms.0.gamma"]


def test_unreadable_files(tmp_path):
    path = tmp_path / "cut.ckpt"
    mindspore.save_checkpoint(_net(), str(path))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.ckpt"):
        load_weights(_net(), path)
    (tmp_path / "text.ckpt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="text.ckpt"):
        load_weights(_net(), tmp_path / "text.ckpt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_weights(_net(), tmp_path / "absent.ckpt")
