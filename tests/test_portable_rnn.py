"""model.rnn_impl: the portable masked RNN (one LSTM per direction + ReverseSequence) and the custom one
(our CPU kernel) equal the fused CPU one — outputs, gradients (PYNATIVE and GRAPH), the whole CTC loss; the
portable one also in streaming state and checkpoints — and the device packings of the portable LSTM follow
torch's equations."""
from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

mindspore = pytest.importorskip("mindspore")
from mindspore import Tensor  # noqa: E402

from deepspeech2.core.config import FeatureConfig, ModelConfig, load_config  # noqa: E402
from deepspeech2.data.shapes import output_lengths  # noqa: E402
from deepspeech2.model.loss import CTCLoss  # noqa: E402
from deepspeech2.model.network import DeepSpeech2, MaskedRNN  # noqa: E402
from deepspeech2.model.lstm_kernel import kernel_library  # noqa: E402
from deepspeech2.model.rnn_impl import (DirectionLSTM, exportable_rnn_impl, pack_lstm_weights,  # noqa: E402
                                         resolve_rnn_impl)
from deepspeech2.model.weights import load_weights  # noqa: E402

mindspore.set_device("CPU")
FEAT = FeatureConfig()
TINY = dict(hidden_size=16, num_layers=2, conv_channels=2)
LENGTHS = [[23, 9, 16, 2], [7], [5, 3, 1], [1, 1]]  # padded batch, batch 1, odd lengths, one frame
ATOL = 1e-5


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _padded(lengths, size, seed=0):
    """x (T, N, D) zero on padding, mask (T, N, 1), lengths (N,)."""
    t = max(lengths)
    x = np.random.default_rng(seed).standard_normal((t, len(lengths), size)).astype(np.float32)
    mask = (np.arange(t)[:, None] < np.array(lengths)[None, :]).astype(np.float32)[:, :, None]
    return Tensor(x * mask), Tensor(mask), Tensor(np.array(lengths, np.int32))


def _copy_params(src, dst):
    src_params = dict(src.parameters_and_names())
    for name, param in dst.parameters_and_names():
        param.set_data(src_params[name].data.copy())


def _layer_pair(bidirectional, input_size=5, hidden=8, impl="portable"):
    """A fused layer and an ``impl`` layer with the same parameters."""
    mindspore.set_seed(0)
    fused = MaskedRNN("lstm", input_size, hidden, bidirectional, "fused")
    other = MaskedRNN("lstm", input_size, hidden, bidirectional, impl)
    _copy_params(fused, other)
    return fused, other


def _value_and_grads(layer, x, mask, lengths, graph=False):
    """Loss = weighted sum of the outputs; its value and gradients w.r.t. x and every parameter (GRAPH:
    compiled with dynamic batch and time, as the training step is)."""
    weights = Tensor(np.random.default_rng(1).standard_normal((x.shape[0], x.shape[1], layer.hidden))
                     .astype(np.float32))
    params = layer.trainable_params()

    def loss(inputs, mask, lengths, weights):
        return (layer(inputs, mask, lengths) * weights).sum()

    grad_fn = mindspore.value_and_grad(loss, 0, params)

    def step(inputs, mask, lengths, weights):
        return grad_fn(inputs, mask, lengths, weights)

    if graph:
        step = mindspore.jit(mindspore.enable_dynamic(
            inputs=Tensor(shape=[None, None, x.shape[2]], dtype=mindspore.float32),
            mask=Tensor(shape=[None, None, 1], dtype=mindspore.float32),
            lengths=Tensor(shape=[None], dtype=mindspore.int32),
            weights=Tensor(shape=[None, None, layer.hidden], dtype=mindspore.float32))(step))
    value, (dx, dparams) = step(x, mask, lengths, weights)
    return value.asnumpy(), dx.asnumpy(), {p.name: g.asnumpy() for p, g in zip(params, dparams)}


def assert_same_values_and_grads(got, want, frames):
    """Equal loss, input gradient and parameter gradients; every parameter gradient non-zero (but W_hh's
    when no utterance has two frames)."""
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=ATOL)
    np.testing.assert_allclose(got[1], want[1], atol=ATOL)
    assert set(got[2]) == set(want[2])
    for name, grad in want[2].items():
        if frames > 1 or not name.startswith("weight_hh"):
            assert np.abs(grad).max() > 0, name
        np.testing.assert_allclose(got[2][name], grad, atol=ATOL, err_msg=name)


@pytest.mark.parametrize("impl", ["portable", "custom"])
@pytest.mark.parametrize("lengths", LENGTHS)
@pytest.mark.parametrize("bidirectional", [True, False])
def test_impl_equals_fused_outputs_and_gradients(bidirectional, lengths, impl):
    fused, other = _layer_pair(bidirectional, impl=impl)
    x, mask, lens = _padded(lengths, 5)
    out = other(x, mask, lens).asnumpy()
    np.testing.assert_allclose(out, fused(x, mask, lens).asnumpy(), atol=ATOL)
    assert not out[np.broadcast_to(mask.asnumpy() == 0, out.shape)].any()       # padded frames are zero
    want, got = _value_and_grads(fused, x, mask, lens), _value_and_grads(other, x, mask, lens)
    assert len(want[2]) == (8 if bidirectional else 4)
    assert_same_values_and_grads(got, want, max(lengths))


@pytest.mark.parametrize("impl", ["portable", "custom"])
def test_impl_equals_fused_gradients_in_graph_mode(impl):
    fused, other = _layer_pair(True, input_size=6, hidden=12, impl=impl)
    for lengths in LENGTHS:
        x, mask, lens = _padded(lengths, 6, seed=len(lengths))
        assert_same_values_and_grads(_value_and_grads(other, x, mask, lens, graph=True),
                                     _value_and_grads(fused, x, mask, lens, graph=True), max(lengths))


def test_portable_run_with_state_equals_fused_chunk_by_chunk():
    fused, portable = _layer_pair(False)
    x = _padded([12, 12], 5)[0]
    states = {}
    for layer in (fused, portable):
        h = c = Tensor(np.zeros((1, 2, 8), np.float32))
        ys = []
        for start, end in ((0, 5), (5, 9), (9, 12)):              # chunks of 5, 4, 3 frames
            y, h, c = layer.run_with_state(x[start:end], h, c)
            ys.append(y.asnumpy())
        states[layer] = (np.concatenate(ys), h.asnumpy(), c.asnumpy())
    for want, got in zip(states[fused], states[portable]):
        np.testing.assert_allclose(got, want, atol=ATOL)
    mask, lens = Tensor(np.ones((12, 2, 1), np.float32)), Tensor(np.array([12, 12], np.int32))
    np.testing.assert_allclose(states[portable][0], portable(x, mask, lens).asnumpy(), atol=ATOL)


def _nets(bidirectional=True, impl="portable"):
    mindspore.set_seed(0)
    cfg = dict(TINY, bidirectional=bidirectional, lookahead_context=2)
    return (DeepSpeech2(ModelConfig(**cfg, rnn_impl="fused"), FEAT, 29),
            DeepSpeech2(ModelConfig(**cfg, rnn_impl=impl), FEAT, 29))


def _spectrogram_batch(lengths, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((len(lengths), 1, 161, max(lengths))).astype(np.float32)
    for i, n in enumerate(lengths):
        x[i, :, :, n:] = 0.0
    return Tensor(x), Tensor(np.array(lengths, np.int32))


@pytest.mark.parametrize("direction", ["fused->portable", "portable->fused"])
def test_checkpoint_loads_across_impls_with_zoo_names(tmp_path, direction):
    fused, portable = _nets()
    src, dst = (fused, portable) if direction == "fused->portable" else (portable, fused)
    for param in src.trainable_params():                      # weights dst does not have yet
        param.set_data(Tensor(np.random.default_rng(3).uniform(-0.3, 0.3, param.shape).astype(np.float32)))
    names = {n for n, _ in src.parameters_and_names()}
    assert names == {n for n, _ in dst.parameters_and_names()}
    assert {f"RNN.lstms.{i}.{w}_l0{s}" for i in range(2) for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            for s in ("", "_reverse")} <= names
    path = tmp_path / "src.ckpt"
    mindspore.save_checkpoint(src, str(path))
    report = load_weights(dst, path)
    assert report.complete and not report.missing and not report.unexpected and not report.ignored
    src.set_train(False), dst.set_train(False)
    x, lens = _spectrogram_batch([40, 17, 31, 4])
    for a, b in zip(src(x, lens), dst(x, lens)):
        np.testing.assert_allclose(b.asnumpy(), a.asnumpy(), atol=ATOL)


@pytest.mark.parametrize("impl", ["portable", "custom"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_whole_network_ctc_loss_equal_across_impls(bidirectional, impl):
    fused, portable = _nets(bidirectional, impl)
    _copy_params(fused, portable)
    x, lens = _spectrogram_batch([45, 19, 33, 7], seed=2)
    targets = Tensor(np.array([[3, 4, 5, 6], [7, 8, 0, 0], [9, 10, 11, 0], [12, 0, 0, 0]], np.int32))
    target_lengths = Tensor(np.array([4, 2, 3, 1], np.int32))
    ctc = CTCLoss(blank=28)
    losses = []
    for net in (fused, portable):
        net.set_train(True)
        log_probs, out_lengths = net(x, lens)
        np.testing.assert_array_equal(out_lengths.asnumpy(), output_lengths(lens.asnumpy()))
        losses.append(float(ctc(log_probs, targets, out_lengths, target_lengths).asnumpy()))
    assert np.isfinite(losses[0])
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)


def test_rnn_impl_choice_per_device(monkeypatch):
    assert resolve_rnn_impl("auto", "lstm", "CPU") == "custom"
    assert resolve_rnn_impl("auto", "gru", "CPU") == "fused"
    assert resolve_rnn_impl("auto", "lstm", "GPU") == resolve_rnn_impl("auto", "lstm", "Ascend") == "portable"
    assert resolve_rnn_impl("portable", "lstm", "CPU") == "portable"
    assert resolve_rnn_impl("fused", "gru", "CPU") == "fused"
    assert resolve_rnn_impl("custom", "lstm", "CPU") == "custom"
    assert resolve_rnn_impl("custom", "lstm", "GPU") == resolve_rnn_impl("custom", "lstm", "Ascend") == "portable"
    with pytest.raises(ValueError, match="only the fused"):
        resolve_rnn_impl("custom", "gru", "CPU")
    with pytest.raises(ValueError, match="runs a CPU kernel"):
        resolve_rnn_impl("fused", "lstm", "GPU")
    with pytest.raises(ValueError, match="only the fused"):
        resolve_rnn_impl("portable", "gru", "CPU")
    with pytest.raises(ValueError, match="only the fused"):
        resolve_rnn_impl("auto", "gru", "Ascend")
    with pytest.raises(ValueError, match="only the fused"):
        DeepSpeech2(ModelConfig(**TINY, rnn_type="gru", rnn_impl="portable"), FEAT, 29)
    assert load_config(None, ["model.rnn_impl=portable"]).model.rnn_impl == "portable"
    assert load_config(None, []).model.rnn_impl == "auto"
    with pytest.raises(ValueError, match="rnn_impl"):
        load_config(None, ["model.rnn_impl=cudnn"])
    assert exportable_rnn_impl("auto", "CPU") == exportable_rnn_impl("custom", "CPU") == "fused"
    assert exportable_rnn_impl("auto", "GPU") == exportable_rnn_impl("custom", "Ascend") == "portable"
    assert exportable_rnn_impl("portable", "CPU") == "portable"


def test_auto_falls_back_to_fused_when_the_kernel_cannot_be_built(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("DS2_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setattr(shutil, "which", lambda name: None)              # no g++
    kernel_library.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="deepspeech2.model.rnn_impl"):
            assert resolve_rnn_impl("auto", "lstm", "CPU") == "fused"
        assert "needs g++" in caplog.text
        with pytest.raises(RuntimeError, match="needs g\\+\\+"):
            MaskedRNN("lstm", 5, 8, True, "custom")                     # asked for explicitly: an error
    finally:
        monkeypatch.undo()
        kernel_library.cache_clear()


def _ascend_dynamic_rnn(x, weight, bias):
    """ops.DynamicRNN's documented equations: [x, h] @ W (D + H, 4H) + b, gates (i, j, f, o)."""
    h = np.zeros(weight.shape[1] // 4); c = np.zeros_like(h); out = []
    for x_t in x:
        i, j, f, o = np.split(np.concatenate([x_t, h]) @ weight + bias, 4)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(j)
        h = _sigmoid(o) * np.tanh(c)
        out.append(h)
    return np.array(out)


def test_device_packings_follow_torch_equations():
    """GPU/Ascend cannot run here: GPU's flat weight is [W_ih, W_hh, b_ih, b_hh]; Ascend's packing run
    through DynamicRNN's documented equations equals the CPU kernel (torch's equations, test_model)."""
    rng = np.random.default_rng(4)
    d, hid = 5, 3
    w_ih, w_hh = rng.standard_normal((4 * hid, d)), rng.standard_normal((4 * hid, hid))
    b_ih, b_hh = rng.standard_normal(4 * hid), rng.standard_normal(4 * hid)
    tensors = [Tensor(a.astype(np.float32)) for a in (w_ih, w_hh, b_ih, b_hh)]
    gpu, no_bias = pack_lstm_weights(*tensors, "GPU")
    assert no_bias is None
    np.testing.assert_allclose(gpu.asnumpy().ravel(), np.concatenate(
        [w_ih.ravel(), w_hh.ravel(), b_ih, b_hh]), rtol=1e-6)
    weight, bias = pack_lstm_weights(*tensors, "Ascend")
    assert weight.shape == (d + hid, 4 * hid) and bias.shape == (4 * hid,)
    x = rng.standard_normal((6, 1, d)).astype(np.float32)
    h0 = Tensor(np.zeros((1, 1, hid), np.float32))
    cpu = DirectionLSTM(d, hid, "CPU")(Tensor(x), h0, h0, *tensors)[0].asnumpy()[:, 0]  # torch's equations
    np.testing.assert_allclose(_ascend_dynamic_rnn(x[:, 0], weight.asnumpy(), bias.asnumpy()), cpu, atol=1e-5)
    with pytest.raises(ValueError, match="device"):
        pack_lstm_weights(*tensors, "TPU")
