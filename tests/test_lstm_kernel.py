"""model.rnn_impl=custom: our CPU recurrence kernel (a Custom aot op) equals the fused oneDNN LSTM —
outputs and gradients of a layer (PYNATIVE, and GRAPH with dynamic batch and time), the whole network's
CTC loss — its saved states follow torch's LSTM equations, and every one of its outputs is differentiated
exactly (checked against finite differences)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

mindspore = pytest.importorskip("mindspore")
from mindspore import Tensor  # noqa: E402

from deepspeech2.core.config import FeatureConfig, ModelConfig  # noqa: E402
from deepspeech2.model import lstm_kernel  # noqa: E402
from deepspeech2.model.loss import CTCLoss  # noqa: E402
from deepspeech2.model.lstm_kernel import MaskedLSTMRecurrence, kernel_library  # noqa: E402
from deepspeech2.model.network import DeepSpeech2, MaskedRNN  # noqa: E402
from deepspeech2.model.rnn_impl import resolve_rnn_impl  # noqa: E402

mindspore.set_device("CPU")
ATOL = 1e-5
LENGTHS = [[23, 9, 16, 2], [7], [5, 3, 1], [1, 1]]          # padded batch, batch 1, odd lengths, one frame
GATE_SLOTS = 6                                              # i, f, g, o, c, h per direction


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _padded(lengths, size, seed=0):
    t = max(lengths)
    x = np.random.default_rng(seed).standard_normal((t, len(lengths), size)).astype(np.float32)
    mask = (np.arange(t)[:, None] < np.array(lengths)[None, :]).astype(np.float32)[:, :, None]
    return Tensor(x * mask), Tensor(mask), Tensor(np.array(lengths, np.int32))


def _layers(bidirectional, input_size=5, hidden=8):
    mindspore.set_seed(0)
    fused = MaskedRNN("lstm", input_size, hidden, bidirectional, "fused")
    custom = MaskedRNN("lstm", input_size, hidden, bidirectional, "custom")
    params = dict(fused.parameters_and_names())
    for name, param in custom.parameters_and_names():
        param.set_data(params[name].data.copy())
    return fused, custom


def _value_and_grads(layer, x, mask, lengths, graph=False):
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


def _assert_same(got, want, frames):
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=ATOL)
    np.testing.assert_allclose(got[1], want[1], atol=ATOL)
    assert set(got[2]) == set(want[2])
    for name, grad in want[2].items():
        if frames > 1 or not name.startswith("weight_hh"):       # one frame: no recurrent product
            assert np.abs(grad).max() > 0, name
        np.testing.assert_allclose(got[2][name], grad, atol=ATOL, err_msg=name)


@pytest.mark.parametrize("lengths", LENGTHS)
@pytest.mark.parametrize("bidirectional", [True, False])
def test_custom_equals_fused_outputs_and_gradients(bidirectional, lengths):
    fused, custom = _layers(bidirectional)
    x, mask, lens = _padded(lengths, 5)
    out = custom(x, mask, lens).asnumpy()
    np.testing.assert_allclose(out, fused(x, mask, lens).asnumpy(), atol=ATOL)
    assert not out[np.broadcast_to(mask.asnumpy() == 0, out.shape)].any()       # padded frames are zero
    _assert_same(_value_and_grads(custom, x, mask, lens), _value_and_grads(fused, x, mask, lens), max(lengths))


def test_custom_equals_fused_in_graph_mode_across_shapes():
    """GRAPH mode with dynamic batch and time, as in training."""
    fused, custom = _layers(True, input_size=6, hidden=12)
    for lengths in LENGTHS:
        x, mask, lens = _padded(lengths, 6, seed=len(lengths))
        _assert_same(_value_and_grads(custom, x, mask, lens, graph=True),
                     _value_and_grads(fused, x, mask, lens, graph=True), max(lengths))


def _reference_states(gates_in, lengths, w_hh, bias):
    """Torch's LSTM equations per utterance and direction over its valid frames → (1 + 6D, T, N, H)."""
    t_max, n_utts, _ = gates_in.shape
    dirs, _, hidden = w_hh.shape
    out = np.zeros((1 + GATE_SLOTS * dirs, t_max, n_utts, hidden))
    for n, length in enumerate(lengths):
        for d in range(dirs):
            h, c = np.zeros(hidden), np.zeros(hidden)
            for t in (range(length) if d == 0 else reversed(range(length))):
                pre = gates_in[t, n, d * 4 * hidden:(d + 1) * 4 * hidden] + bias[d * 4 * hidden:(d + 1) * 4 * hidden]
                i, f, g, o = np.split(pre + w_hh[d] @ h, 4)
                i, f, g, o = _sigmoid(i), _sigmoid(f), np.tanh(g), _sigmoid(o)
                c = f * c + i * g
                h = o * np.tanh(c)
                out[1 + GATE_SLOTS * d:1 + GATE_SLOTS * (d + 1), t, n] = np.stack([i, f, g, o, c, h])
    out[0] = out[GATE_SLOTS::GATE_SLOTS].sum(0)
    return out


def _recurrence_inputs(lengths=(4, 2, 3), hidden=3, dirs=2, seed=5):
    rng = np.random.default_rng(seed)
    gates_in = rng.standard_normal((max(lengths), len(lengths), dirs * 4 * hidden))
    w_hh = rng.standard_normal((dirs, 4 * hidden, hidden)) * 0.5
    bias = rng.standard_normal(dirs * 4 * hidden) * 0.5
    return gates_in, np.array(lengths, np.int32), w_hh, bias


def test_saved_states_follow_torch_equations():
    gates_in, lengths, w_hh, bias = _recurrence_inputs()
    got = MaskedLSTMRecurrence()(*(Tensor(a.astype(np.float32) if a.dtype != np.int32 else a)
                                   for a in (gates_in, lengths, w_hh, bias))).asnumpy()
    np.testing.assert_allclose(got, _reference_states(gates_in, lengths, w_hh, bias), atol=2e-6)


def test_every_state_slot_is_differentiated_exactly():
    """A loss weighting all 13 slots (not only the output): the op's gradients w.r.t. G, W_hh and the bias
    equal central finite differences of the float64 reference."""
    gates_in, lengths, w_hh, bias = _recurrence_inputs(seed=6)
    weights = np.random.default_rng(7).standard_normal(_reference_states(gates_in, lengths, w_hh, bias).shape)
    rec = MaskedLSTMRecurrence()

    def loss(g, w, b):
        return (rec(g, Tensor(lengths), w, b) * Tensor(weights.astype(np.float32))).sum()

    grads = mindspore.grad(loss, (0, 1, 2))(*(Tensor(a.astype(np.float32)) for a in (gates_in, w_hh, bias)))
    eps = 1e-5
    for k, (arg, grad) in enumerate(zip((gates_in, w_hh, bias), grads)):
        numeric = np.zeros_like(arg)
        for idx in np.ndindex(arg.shape):
            for sign in (1, -1):
                args = [gates_in.copy(), w_hh.copy(), bias.copy()]
                args[k][idx] += sign * eps
                numeric[idx] += sign * (_reference_states(args[0], lengths, args[1], args[2]) * weights).sum()
        numeric /= 2 * eps
        np.testing.assert_allclose(grad.asnumpy(), numeric, rtol=1e-3, atol=1e-4, err_msg=f"argument {k}")


def test_nan_input_propagates():
    """The kernel is built with -ffast-math; a NaN must still reach the output (the training step's
    finite check relies on it)."""
    _, custom = _layers(True)
    x, mask, lens = _padded([6, 4], 5)
    x_np = x.asnumpy()
    x_np[2, 0, 1] = np.nan
    assert np.isnan(custom(Tensor(x_np), mask, lens).asnumpy()[:, 0]).any()


def test_whole_network_ctc_loss_equals_fused():
    mindspore.set_seed(0)
    cfg = dict(hidden_size=16, num_layers=2, conv_channels=2)
    fused = DeepSpeech2(ModelConfig(**cfg, rnn_impl="fused"), FeatureConfig(), 29)
    custom = DeepSpeech2(ModelConfig(**cfg, rnn_impl="custom"), FeatureConfig(), 29)
    params = dict(fused.parameters_and_names())
    for name, param in custom.parameters_and_names():
        param.set_data(params[name].data.copy())
    rng = np.random.default_rng(2)
    lengths = [45, 19, 33, 7]
    x = rng.standard_normal((4, 1, 161, 45)).astype(np.float32)
    for i, n in enumerate(lengths):
        x[i, :, :, n:] = 0.0
    targets = Tensor(np.array([[3, 4, 5, 6], [7, 8, 0, 0], [9, 10, 11, 0], [12, 0, 0, 0]], np.int32))
    target_lengths = Tensor(np.array([4, 2, 3, 1], np.int32))
    ctc = CTCLoss(blank=28)
    losses = []
    for net in (fused, custom):
        net.set_train(True)
        log_probs, out_lengths = net(Tensor(x), Tensor(np.array(lengths, np.int32)))
        losses.append(float(ctc(log_probs, targets, out_lengths, target_lengths).asnumpy()))
    assert np.isfinite(losses[0])
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)


def test_choice_and_errors():
    assert resolve_rnn_impl("custom", "lstm", "CPU") == "custom"
    assert resolve_rnn_impl("custom", "lstm", "GPU") == resolve_rnn_impl("custom", "lstm", "Ascend") == "portable"
    with pytest.raises(ValueError, match="only the fused"):
        resolve_rnn_impl("custom", "gru", "CPU")


def test_library_built_once_per_source_and_clear_error_without_compiler(tmp_path, monkeypatch):
    monkeypatch.setenv("DS2_KERNEL_CACHE", str(tmp_path))
    kernel_library.cache_clear()
    try:
        built = kernel_library()
        assert built.parent == tmp_path and built.suffix == ".so"
        stamp = built.stat().st_mtime_ns
        kernel_library.cache_clear()
        assert kernel_library() == built and built.stat().st_mtime_ns == stamp      # reused, not rebuilt
        kernel_library.cache_clear()
        monkeypatch.setattr(shutil, "which", lambda name: None)
        with pytest.raises(RuntimeError, match="needs g\\+\\+"):
            kernel_library()
    finally:
        monkeypatch.undo()
        kernel_library.cache_clear()
    assert lstm_kernel.SOURCE.is_file()
