"""model.rnn_impl=custom, our CPU recurrence kernel (Custom aot ops): its saved states follow torch's LSTM
equations, every one of its outputs is differentiated exactly (finite differences), NaN propagates, and the
library is built once. Its equality with the fused LSTM is tested with the portable one in test_portable_rnn."""
from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

mindspore = pytest.importorskip("mindspore")
from mindspore import Tensor  # noqa: E402

from deepspeech2.model import lstm_kernel  # noqa: E402
from deepspeech2.model.lstm_kernel import MaskedLSTMRecurrence, kernel_library  # noqa: E402
from test_portable_rnn import _layer_pair, _padded, _sigmoid  # noqa: E402   (same folder, pytest's rootdir)

mindspore.set_device("CPU")
GATE_SLOTS = 6                                              # i, f, g, o, c, h per direction


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


def _states_and_grads(gates_in, lengths, w_hh, bias, weights):
    rec = MaskedLSTMRecurrence()

    def loss(g, w, b):
        states = rec(g, Tensor(lengths), w, b)
        return (states * Tensor(weights.astype(np.float32))).sum(), states

    (_, states), grads = mindspore.value_and_grad(loss, (0, 1, 2), has_aux=True)(
        *(Tensor(a.astype(np.float32)) for a in (gates_in, w_hh, bias)))
    return states.asnumpy(), [g.asnumpy() for g in grads]


@pytest.mark.parametrize("lengths", [(7,), (7, 3, 5, 1), (2, 6, 0), (7, 3, 5, 1, 2, 6, 4, 7, 3, 5)])
@pytest.mark.parametrize("dirs", [1, 2])
@pytest.mark.parametrize("hidden", [3, 40])
def test_schedules_and_thread_counts_give_the_same_states_and_gradients(monkeypatch, lengths, dirs, hidden):
    """The recurrence shared by threads (blocks of units, a barrier per step) equals one thread per direction
    and torch's equations, for 1-3 threads, odd and zero lengths, batch 1, batch 10 (a full tile of 8 rows and
    a partial one), blocks of unequal width (H = 40 splits 32 + 8 over 2 threads) and a thread with no units
    (H = 3)."""
    args = _recurrence_inputs(lengths=lengths, hidden=hidden, dirs=dirs, seed=11)
    weights = np.random.default_rng(12).standard_normal(_reference_states(*args).shape)
    monkeypatch.setenv("DS2_LSTM_SCHEDULE", "directions")
    monkeypatch.setenv("DS2_CPU_THREADS", "1")
    base_states, base_grads = _states_and_grads(*args, weights)
    np.testing.assert_allclose(base_states, _reference_states(*args), atol=2e-5)
    for schedule, threads in [("directions", "2"), ("units", "2"), ("units", "3"), ("auto", "2")]:
        monkeypatch.setenv("DS2_LSTM_SCHEDULE", schedule)
        monkeypatch.setenv("DS2_CPU_THREADS", threads)
        states, grads = _states_and_grads(*args, weights)
        np.testing.assert_allclose(states, base_states, rtol=1e-5, atol=1e-6, err_msg=f"{schedule} {threads}")
        for k, (got, want) in enumerate(zip(grads, base_grads)):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=f"{schedule} {threads} argument {k}")


def test_saturated_gates_stay_finite_and_exact():
    """Pre-activations far beyond exp's range (|x| up to ~600: a diverging run's first steps) give the saturated
    gates torch's equations give, not NaN (the kernel is built with -ffast-math, where exp overflow is NaN)."""
    gates_in, lengths, w_hh, bias = _recurrence_inputs(lengths=(6, 3), hidden=20, seed=8)
    gates_in = gates_in * 200.0
    got = MaskedLSTMRecurrence()(*(Tensor(a.astype(np.float32) if a.dtype != np.int32 else a)
                                   for a in (gates_in, lengths, w_hh, bias))).asnumpy()
    with np.errstate(over="ignore"):
        want = _reference_states(gates_in, lengths, w_hh, bias)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_nan_input_propagates():
    """The kernel is built with -ffast-math; a NaN must still reach the output (the training step's
    finite check relies on it)."""
    _, custom = _layer_pair(True, impl="custom")
    x, mask, lens = _padded([6, 4], 5)
    x_np = x.asnumpy()
    x_np[2, 0, 1] = np.nan
    assert np.isnan(custom(Tensor(x_np), mask, lens).asnumpy()[:, 0]).any()


def test_library_built_once_per_source_and_clear_error_without_compiler(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("DS2_KERNEL_CACHE", str(tmp_path))
    kernel_library.cache_clear()
    try:
        built = kernel_library()
        assert built.parent == tmp_path and built.suffix == ".so"
        stamp = built.stat().st_mtime_ns
        kernel_library.cache_clear()
        assert kernel_library() == built and built.stat().st_mtime_ns == stamp      # reused, not rebuilt
        size = built.stat().st_size
        whole = built.read_bytes()
        built.write_bytes(whole[:4096])            # truncated (a full disk): loading it would kill the process
        kernel_library.cache_clear()
        with caplog.at_level(logging.WARNING, logger="deepspeech2.model.custom_kernels"):
            assert kernel_library() == built
        assert "building it again" in caplog.text and built.stat().st_size == size     # rebuilt whole
        built.with_suffix(".sha256").unlink()      # a cache from before the record: rebuilt once, then reused
        kernel_library.cache_clear()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="deepspeech2.model.custom_kernels"):
            kernel_library()
            kernel_library.cache_clear()
            kernel_library()
        assert caplog.text.count("building it again") == 1
        kernel_library.cache_clear()
        monkeypatch.setattr(shutil, "which", lambda name: None)
        with pytest.raises(RuntimeError, match="needs g\\+\\+"):
            kernel_library()
    finally:
        monkeypatch.undo()
        kernel_library.cache_clear()
    assert lstm_kernel.SOURCE.is_file()


@pytest.mark.parametrize("value, ok", [("", True), ("units", True), ("directions", True), ("unit", False),
                                       ("Units", False)])
def test_schedule_variable_is_checked(monkeypatch, value, ok):
    """DS2_LSTM_SCHEDULE: a misspelt schedule is an error naming the variable and the valid values, not a
    silent auto."""
    monkeypatch.setenv("DS2_LSTM_SCHEDULE", value)
    if ok:
        MaskedLSTMRecurrence()
    else:
        with pytest.raises(ValueError, match=f"DS2_LSTM_SCHEDULE must be one of auto, directions, units.*{value!r}"):
            MaskedLSTMRecurrence()


def test_unusable_cache_directory_is_a_clear_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("DS2_KERNEL_CACHE", str(blocker / "kernels"))
    kernel_library.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="DS2_KERNEL_CACHE to a writable directory"):
            kernel_library()
    finally:
        monkeypatch.undo()
        kernel_library.cache_clear()
