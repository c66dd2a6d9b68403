"""CTC loss (MindSpore's op and our kernel, model.ctc_impl) against a numpy forward-algorithm reference; gradients
against finite differences and against each other."""
from __future__ import annotations

import numpy as np
import pytest

mindspore = pytest.importorskip("mindspore")
from mindspore import Tensor, ops  # noqa: E402

from deepspeech2.model.loss import CTC_IMPLS, CTCLoss, resolve_ctc_impl  # noqa: E402

mindspore.set_device("CPU")
IMPLS = pytest.mark.parametrize("impl", ["mindspore", "custom"])


def np_ctc(log_probs: np.ndarray, target, blank: int) -> float:
    """-log p(target | log_probs (T, C)) by the log-space alpha recursion over the blank-extended target."""
    ext = [blank]
    for label in target:
        ext += [int(label), blank]
    alpha = np.full(len(ext), -np.inf)
    alpha[0] = log_probs[0, blank]
    if len(ext) > 1:
        alpha[1] = log_probs[0, ext[1]]
    for t in range(1, len(log_probs)):
        prev = alpha.copy()
        for s in range(len(ext)):
            terms = [prev[s]]
            if s >= 1:
                terms.append(prev[s - 1])
            if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]:
                terms.append(prev[s - 2])
            alpha[s] = np.logaddexp.reduce(terms) + log_probs[t, ext[s]]
    return float(-np.logaddexp(alpha[-1], alpha[-2]) if len(ext) > 1 else -alpha[-1])


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _random_case(seed, n=4, t_max=12, c=6, s_max=4):
    rng = np.random.default_rng(seed)
    blank = c - 1                                       # blank last, like the zoo's labels
    target_lengths = rng.integers(1, s_max + 1, n)
    targets = np.zeros((n, s_max), np.int32)
    for i, s in enumerate(target_lengths):
        targets[i, :s] = rng.integers(0, blank, s)
    input_lengths = np.array([rng.integers(2 * s + 1, t_max + 1) for s in target_lengths])
    input_lengths[0] = t_max
    log_probs = _log_softmax(rng.standard_normal((t_max, n, c))).astype(np.float32)
    return log_probs, targets, input_lengths.astype(np.int32), target_lengths.astype(np.int32), blank


@pytest.mark.parametrize("seed", [0, 1, 2])
@IMPLS
def test_matches_numpy_forward_algorithm(seed, impl):
    log_probs, targets, in_len, tgt_len, blank = _random_case(seed)
    loss = CTCLoss(blank, impl=impl)
    per_utt, finite = loss.utterance_losses(Tensor(log_probs), Tensor(targets), Tensor(in_len), Tensor(tgt_len))
    want = [np_ctc(log_probs[:in_len[i], i], targets[i, :tgt_len[i]], blank) for i in range(len(in_len))]
    np.testing.assert_allclose(per_utt.asnumpy(), want, rtol=1e-5, atol=1e-4)
    assert finite.asnumpy().all()
    batch = loss(Tensor(log_probs), Tensor(targets), Tensor(in_len), Tensor(tgt_len))
    assert float(batch.asnumpy()) == pytest.approx(sum(want) / len(want), rel=1e-5)   # sum / N


@IMPLS
def test_single_frame_and_fp16_input(impl):
    log_probs = _log_softmax(np.random.default_rng(3).standard_normal((1, 2, 4))).astype(np.float32)
    targets, in_len, tgt_len = np.array([[2], [0]], np.int32), np.array([1, 1], np.int32), np.array([1, 1], np.int32)
    got = CTCLoss(3, impl=impl)(Tensor(log_probs.astype(np.float16)), Tensor(targets), Tensor(in_len), Tensor(tgt_len))
    want = (-log_probs[0, 0, 2] - log_probs[0, 1, 0]) / 2
    assert float(got.asnumpy()) == pytest.approx(float(want), abs=2e-3)


@IMPLS
def test_unalignable_utterance_is_inf_with_zero_gradient(impl):
    """[1, 1, 1] needs 5 frames (blanks between repeats): 4 frames give inf, not a kernel error."""
    log_probs, targets, in_len, tgt_len, blank = _random_case(4, n=3, t_max=8, s_max=3)
    targets[1], tgt_len[1], in_len[1] = [1, 1, 1], 3, 4
    args = (Tensor(targets), Tensor(in_len), Tensor(tgt_len))
    per_utt, finite = CTCLoss(blank, impl=impl).utterance_losses(Tensor(log_probs), *args)
    assert np.isinf(per_utt.asnumpy()[1]) and finite.asnumpy().tolist() == [True, False, True]
    assert np.isinf(float(CTCLoss(blank, impl=impl)(Tensor(log_probs), *args).asnumpy()))
    dropping = CTCLoss(blank, drop_nonfinite=True, impl=impl)
    value, grad = mindspore.value_and_grad(lambda lp: dropping(lp, *args))(Tensor(log_probs))
    finite_losses = per_utt.asnumpy()[[0, 2]]
    assert float(value.asnumpy()) == pytest.approx(finite_losses.sum() / 3, rel=1e-5)
    grad = grad.asnumpy()
    assert np.isfinite(grad).all() and not grad[:, 1].any() and grad[:, 0].any()


@IMPLS
def test_gradient_matches_finite_differences(impl):
    """d loss / d logits through log_softmax, against central differences of the numpy reference."""
    rng = np.random.default_rng(5)
    t, c, blank = 5, 4, 3
    logits = rng.standard_normal((t, 1, c))
    target = np.array([[1, 2]], np.int32)
    args = (Tensor(target), Tensor(np.array([t], np.int32)), Tensor(np.array([2], np.int32)))
    loss = CTCLoss(blank, impl=impl)

    def forward(z):
        return loss(ops.log_softmax(z, -1), *args)

    grad = mindspore.grad(forward)(Tensor(logits.astype(np.float32))).asnumpy()
    numeric = np.zeros_like(logits)
    eps = 1e-5
    for idx in np.ndindex(logits.shape):
        plus, minus = logits.copy(), logits.copy()
        plus[idx] += eps
        minus[idx] -= eps
        numeric[idx] = (np_ctc(_log_softmax(plus)[:, 0], target[0], blank)
                        - np_ctc(_log_softmax(minus)[:, 0], target[0], blank)) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, atol=1e-4)


@IMPLS
def test_graph_mode(impl):
    log_probs, targets, in_len, tgt_len, blank = _random_case(6)
    eager = CTCLoss(blank, impl=impl)(Tensor(log_probs), Tensor(targets), Tensor(in_len), Tensor(tgt_len))
    graph = mindspore.jit(CTCLoss(blank, impl=impl))(Tensor(log_probs), Tensor(targets), Tensor(in_len), Tensor(tgt_len))
    assert float(graph.asnumpy()) == pytest.approx(float(eager.asnumpy()), rel=1e-6)


def _model_gradients(impl, seed):
    log_probs, targets, in_len, tgt_len, blank = _random_case(seed, n=5, t_max=40, c=9, s_max=12)
    logits = Tensor(np.random.default_rng(seed).standard_normal(log_probs.shape).astype(np.float32))
    loss = CTCLoss(blank, impl=impl)

    def forward(z):
        return loss(ops.log_softmax(z, -1), Tensor(targets), Tensor(in_len), Tensor(tgt_len))

    value, grad = mindspore.jit(mindspore.value_and_grad(forward))(logits)
    return float(value.asnumpy()), grad.asnumpy(), in_len


@pytest.mark.parametrize("seed", [7, 8])
def test_kernel_loss_and_logit_gradients_equal_mindspores(seed):
    want_loss, want_grad, in_len = _model_gradients("mindspore", seed)
    got_loss, got_grad, _ = _model_gradients("custom", seed)
    assert got_loss == pytest.approx(want_loss, rel=1e-5)
    np.testing.assert_allclose(got_grad, want_grad, atol=1e-5)
    for n, length in enumerate(in_len):         # padded frames get no gradient
        assert not got_grad[length:, n].any()


def test_auto_takes_the_kernel_on_cpu_only():
    assert resolve_ctc_impl("auto", "CPU", 0) == "custom"
    assert resolve_ctc_impl("auto", "GPU", 0) == resolve_ctc_impl("custom", "Ascend", 0) == "mindspore"
    assert CTC_IMPLS == ("auto", "mindspore", "custom")
    with pytest.raises(ValueError, match="ctc_impl"):
        resolve_ctc_impl("warp", "CPU", 0)


@pytest.mark.parametrize("bad, says", [("blank", "target label 5, expected a label other than the blank"),
                                       ("label", "target label 7, expected 0 .. classes - 1"),
                                       ("length", "input length 13, expected 0 .. the padded frame count")])
def test_kernel_names_the_utterance_and_argument_it_rejects(capfd, bad, says):
    """MindSpore reports only the kernel's return code; the kernel says which utterance and value on stderr."""
    log_probs, targets, in_len, tgt_len, blank = _random_case(9, n=3, t_max=12, c=6)
    if bad == "length":
        in_len[2] = 13
    else:
        targets[2, 0] = blank if bad == "blank" else 7
    with pytest.raises(RuntimeError):
        CTCLoss(blank, impl="custom")(Tensor(log_probs), Tensor(targets), Tensor(in_len), Tensor(tgt_len)).asnumpy()
    assert f"CTC loss kernel: utterance 2 of the batch: {says}" in capfd.readouterr().err
