"""model.bn_impl=custom: our BatchNorm kernel equals nn.BatchNorm1d — training and inference outputs, gradients,
moving statistics, masking, PYNATIVE and GRAPH with dynamic rows, the whole network's CTC loss and gradients,
checkpoints both ways — and which implementation ``auto`` and the MINDIR export take."""
from __future__ import annotations

import numpy as np
import pytest

mindspore = pytest.importorskip("mindspore")
from mindspore import Tensor, nn  # noqa: E402

from deepspeech2.core.config import ConfigError, FeatureConfig, ModelConfig, load_config  # noqa: E402
from deepspeech2.model.batch_norm import (KernelBatchNorm1d, exportable_bn_impl, make_batch_norm,  # noqa: E402
                                          resolve_bn_impl)
from deepspeech2.model.network import DeepSpeech2  # noqa: E402
from deepspeech2.model.weights import load_weights  # noqa: E402

mindspore.set_device("CPU")
FBANK = FeatureConfig(type="fbank", n_mels=24)
LAB = dict(conv_stack="small_t3", conv_channels=4, hidden_size=16, num_layers=3, rnn_batch_norm=True,
           fc_batch_norm=True)


def _pair(channels, seed=0):
    """nn.BatchNorm1d and KernelBatchNorm1d with the same (non-default) gamma and beta."""
    rng = np.random.default_rng(seed)
    reference, kernel = nn.BatchNorm1d(channels), KernelBatchNorm1d(channels)
    gamma, beta = rng.uniform(0.5, 1.5, channels).astype(np.float32), rng.normal(0, 0.3, channels).astype(np.float32)
    for cell in (reference, kernel):
        cell.gamma.set_data(Tensor(gamma))
        cell.beta.set_data(Tensor(beta))
    return reference, kernel


def _grads(cell, x, dy, mask=None, graph=False):
    params = [cell.gamma, cell.beta]

    def loss(inputs):
        out = cell(inputs) if mask is None else cell(inputs, mask)
        return (out * dy).sum()

    step = mindspore.value_and_grad(loss, 0, params)
    _, (dx, (d_gamma, d_beta)) = (mindspore.jit(step) if graph else step)(x)
    return dx.asnumpy(), d_gamma.asnumpy(), d_beta.asnumpy()


@pytest.mark.parametrize("graph", [False, True], ids=["pynative", "graph"])
@pytest.mark.parametrize("rows, channels", [(2664, 256), (37, 5), (2, 3)])
def test_kernel_equals_batch_norm_1d_in_training(rows, channels, graph):
    rng = np.random.default_rng(rows)
    x = Tensor((rng.standard_normal((rows, channels)) * 2 + 0.7).astype(np.float32))
    dy = Tensor(rng.standard_normal((rows, channels)).astype(np.float32))
    ones = Tensor(np.ones(rows, np.float32))
    reference, kernel = _pair(channels)
    for cell in (reference, kernel):
        cell.set_train(True)
    want = _grads(reference, x, dy, graph=graph)
    got = _grads(kernel, x, dy, ones, graph=graph)
    for name, w, g in zip(("dx", "dgamma", "dbeta"), want, got):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=2e-5, err_msg=name)
    reference_out, kernel_out = reference(x).asnumpy(), kernel(x, ones).asnumpy()
    np.testing.assert_allclose(kernel_out, reference_out, rtol=1e-5, atol=1e-5)
    # each of the three calls per cell updated the moving statistics once, the same way
    for name in ("moving_mean", "moving_variance"):
        np.testing.assert_allclose(getattr(kernel, name).asnumpy(), getattr(reference, name).asnumpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=name)
    assert not np.allclose(kernel.moving_mean.asnumpy(), 0.0)


def test_masked_rows_are_zero_and_get_no_gradient_but_count_in_the_statistics():
    rng = np.random.default_rng(1)
    rows, channels = 40, 6
    x = Tensor(rng.standard_normal((rows, channels)).astype(np.float32))
    dy = Tensor(rng.standard_normal((rows, channels)).astype(np.float32))
    mask_np = (np.arange(rows) % 3 != 0).astype(np.float32)
    reference, kernel = _pair(channels)
    for cell in (reference, kernel):
        cell.set_train(True)

    class MaskedReference(nn.Cell):       # what RNNStack computes with nn.BatchNorm1d
        def __init__(self):
            super().__init__()
            self.gamma, self.beta, self.bn = reference.gamma, reference.beta, reference

        def construct(self, inputs):
            return self.bn(inputs) * Tensor(mask_np).view(-1, 1)

    want = _grads(MaskedReference(), x, dy)
    got = _grads(kernel, x, dy, Tensor(mask_np))
    for name, w, g in zip(("dx", "dgamma", "dbeta"), want, got):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5, err_msg=name)
    out = kernel(x, Tensor(mask_np)).asnumpy()
    assert np.all(out[mask_np == 0] == 0) and np.all(got[0][mask_np == 0] != 0)   # x's stats see every row


def test_inference_uses_the_moving_statistics_as_constants():
    rng = np.random.default_rng(2)
    reference, kernel = _pair(8)
    mean, variance = rng.normal(0, 1, 8).astype(np.float32), rng.uniform(0.5, 2, 8).astype(np.float32)
    for cell in (reference, kernel):
        cell.moving_mean.set_data(Tensor(mean))
        cell.moving_variance.set_data(Tensor(variance))
        cell.set_train(False)
    x = Tensor(rng.standard_normal((13, 8)).astype(np.float32))
    np.testing.assert_allclose(kernel(x, Tensor(np.ones(13, np.float32))).asnumpy(), reference(x).asnumpy(),
                               rtol=1e-5, atol=1e-6)
    dy = Tensor(rng.standard_normal((13, 8)).astype(np.float32))
    for name, w, g in zip(("dx", "dgamma", "dbeta"), _grads(reference, x, dy),
                          _grads(kernel, x, dy, Tensor(np.ones(13, np.float32)))):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=2e-5, err_msg=name)    # the statistics are constants
    before = kernel.moving_mean.asnumpy().copy()
    kernel(x, Tensor(np.ones(13, np.float32)))
    np.testing.assert_array_equal(kernel.moving_mean.asnumpy(), before)


def _network(bn_impl, seed=0, **model):
    mindspore.set_seed(seed)
    return DeepSpeech2(ModelConfig(bn_impl=bn_impl, **{**LAB, **model}), FBANK, 29)


def test_whole_step_loss_gradients_and_moving_statistics_equal_across_bn_impls(compiled_steps):
    batches = [[61, 40, 23], [37, 30]]
    want, want_moving = compiled_steps(_network("onednn"), batches, FBANK.n_mels)
    got, got_moving = compiled_steps(_network("custom"), batches, FBANK.n_mels)
    for (want_loss, want_grads), (got_loss, got_grads) in zip(want, got):
        assert np.isfinite(want_loss)
        np.testing.assert_allclose(got_loss, want_loss, rtol=1e-5)
        for name, grad in want_grads.items():
            np.testing.assert_allclose(got_grads[name], grad, rtol=1e-3, atol=1e-4, err_msg=name)
    assert want_moving.keys() == got_moving.keys() and any("RNN.norms" in n for n in got_moving)
    for name, value in want_moving.items():
        np.testing.assert_allclose(got_moving[name], value, rtol=1e-4, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("source, target", [("onednn", "custom"), ("custom", "onednn")])
def test_checkpoint_of_one_impl_loads_into_the_other(tmp_path, source, target):
    a = _network(source)
    for name, param in a.parameters_and_names():    # trained-looking statistics, not the initial 0 / 1
        if "moving" in name:
            param.set_data(Tensor(np.random.default_rng(len(name)).uniform(0.2, 1.5, param.shape).astype(np.float32)))
    path = tmp_path / f"{source}.ckpt"
    mindspore.save_checkpoint(a, str(path))
    b = _network(target, seed=7)
    load_weights(b, str(path))
    x = Tensor(np.random.default_rng(2).standard_normal((2, 1, FBANK.n_mels, 30)).astype(np.float32))
    lens = Tensor(np.array([30, 17], np.int32))
    a.set_train(False)
    b.set_train(False)
    np.testing.assert_allclose(b(x, lens)[0].asnumpy(), a(x, lens)[0].asnumpy(), rtol=1e-4, atol=2e-5)


def test_auto_takes_the_kernel_on_cpu_and_the_export_holds_batch_norm_1d():
    assert resolve_bn_impl("auto", "CPU") == "custom"
    assert resolve_bn_impl("custom", "GPU") == resolve_bn_impl("auto", "Ascend") == "onednn"
    assert resolve_bn_impl("onednn", "CPU") == "onednn"
    assert exportable_bn_impl("auto", "CPU") == exportable_bn_impl("custom", "CPU") == "onednn"
    assert isinstance(make_batch_norm("onednn", 4), nn.BatchNorm1d)
    assert isinstance(make_batch_norm("custom", 4), KernelBatchNorm1d)
    with pytest.raises(ValueError, match="bn_impl"):
        resolve_bn_impl("fast", "CPU")


def test_unknown_bn_impl_is_rejected_at_config_load():
    with pytest.raises(ConfigError, match="bn_impl"):
        load_config(None, ["model.bn_impl=fast"])
