"""build_optimizer: AdamWeightDecay really decays the weights (not biases); plain Adam does not."""
from __future__ import annotations

import numpy as np
import pytest

from deepspeech2.core.config import load_config


@pytest.fixture(autouse=True, scope="module")
def _cpu():
    from deepspeech2.core.device import init_device

    init_device("CPU", 0, 2)   # the settings every test process uses (see conftest's tiny_config)


def _step_with_zero_gradients(weight_decay: float, lr: float = 0.01):
    """(weight, bias) before and after one optimizer step whose gradients are all zero."""
    import mindspore
    from mindspore import Tensor, nn, ops

    from deepspeech2.training.optimizer import build_optimizer

    mindspore.set_seed(0)
    net = nn.Dense(3, 4)
    cfg = load_config(None, [f"optim.lr={lr}", f"optim.weight_decay={weight_decay}"])
    optimizer = build_optimizer(net, cfg)
    before = {p.name: p.asnumpy().copy() for p in net.trainable_params()}
    optimizer(tuple(ops.zeros_like(p) for p in net.trainable_params()))
    after = {p.name: p.asnumpy() for p in net.trainable_params()}
    weight, bias = (name for name in before if name.endswith("weight")), (n for n in before if n.endswith("bias"))
    w, b = next(weight), next(bias)
    return optimizer, (before[w], after[w]), (before[b], after[b])


def test_weight_decay_shrinks_weights_with_zero_gradients():
    from mindspore import nn

    lr, decay = 0.01, 0.1
    optimizer, (w0, w1), (b0, b1) = _step_with_zero_gradients(decay, lr)
    assert isinstance(optimizer, nn.AdamWeightDecay)
    np.testing.assert_allclose(w1, w0 * (1 - lr * decay), rtol=1e-6)   # decoupled decay: w -= lr * wd * w
    assert np.abs(w1).sum() < np.abs(w0).sum()
    np.testing.assert_array_equal(b1, b0)                             # no decay on biases


def test_without_weight_decay_zero_gradients_change_nothing():
    from mindspore import nn

    optimizer, (w0, w1), (b0, b1) = _step_with_zero_gradients(0.0)
    assert isinstance(optimizer, nn.Adam) and not isinstance(optimizer, nn.AdamWeightDecay)
    np.testing.assert_array_equal(w1, w0)
    np.testing.assert_array_equal(b1, b0)


@pytest.mark.parametrize("lr", [0.01, 0.05])
def test_decay_scales_with_the_learning_rate(lr):
    _, (w0, w1), _ = _step_with_zero_gradients(0.2, lr)
    np.testing.assert_allclose(w1 / w0, 1 - lr * 0.2, rtol=1e-5)
