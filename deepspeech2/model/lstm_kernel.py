"""``model.rnn_impl=custom`` (``auto``'s choice on CPU): a masked LSTM whose recurrence runs in this
package's own CPU kernel.

The graph computes the input projections ``G = x W_ihᵀ`` of all frames and directions in one MatMul;
``kernels/masked_lstm.cc`` (``mindspore.ops.Custom`` aot ops with their own bprop) adds the bias and
runs the recurrence over each utterance's valid frames only (the backward direction starts at the
utterance's last valid frame), and saves exactly what the backward pass needs (13 planes of (T, N, H));
the backward kernels give dL/dG, dL/dW_hh (one product over all frames) and dL/dbias. dL/dx and
dL/dW_ih are MatMuls in the graph again. Each step's recurrent product (a few rows, one per utterance,
times W_hh) is the kernel's own vectorised GEMM over weights repacked once per call; when one
direction's W_hh outgrows a core's L2 cache (the zoo's H = 1024), the directions run one after the
other with every step shared by the threads (``DS2_LSTM_SCHEDULE`` overrides: ``directions``,
``units``), else each direction runs on its own thread.

Against MindSpore 2.10's fused LSTM (oneDNN's RNN primitive, which keeps reordered copies of the
weights and weight gradients per call) it needs less memory, and it is faster at the zoo's width and
as fast at the lab's; the README has the measurements. Same parameters and outputs within fp32
tolerance (``tests/test_lstm_kernel.py``), so checkpoints move freely between implementations.

The kernel is compiled with g++ on first use (:mod:`deepspeech2.model.custom_kernels`: the cache).
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import mindspore
from mindspore import Tensor, nn, ops

from deepspeech2.model.custom_kernels import KERNEL_DIR, build_library, custom_op

__all__ = ["SOURCE", "SCHEDULES", "kernel_library", "MaskedLSTMRecurrence", "CustomLSTM"]

SOURCE = KERNEL_DIR / "masked_lstm.cc"
FORWARD, BACKWARD = "MaskedLstmForward", "MaskedLstmBackward"
WEIGHT_GRAD, BIAS_GRAD = "MaskedLstmWeightGrad", "MaskedLstmBiasGrad"
SCHEDULE_VARIABLE = "DS2_LSTM_SCHEDULE"
SCHEDULES = ("auto", "directions", "units")   # read by the kernel (ShareByUnits in masked_lstm.cc)


def check_schedule() -> str:
    """The recurrence schedule asked for by DS2_LSTM_SCHEDULE (default auto); ValueError for any other value,
    which the kernel would otherwise treat as auto."""
    value = os.environ.get(SCHEDULE_VARIABLE) or "auto"
    if value not in SCHEDULES:
        raise ValueError(f"{SCHEDULE_VARIABLE} must be one of {', '.join(SCHEDULES)} (or unset), got {value!r}")
    return value


@lru_cache(maxsize=1)
def kernel_library() -> Path:
    """Path of the compiled LSTM kernel (:func:`deepspeech2.model.custom_kernels.build_library`)."""
    return build_library(SOURCE, user="model.rnn_impl=custom", fallback="model.rnn_impl=fused")


def _op(name: str, inputs: tuple[str, ...], bprop=None) -> ops.Custom:
    return custom_op(kernel_library(), name, inputs, bprop)


class MaskedLSTMRecurrence(nn.Cell):
    """``(G (T, N, D·4H), lengths (N,) int32, W_hh (D, 4H, H), bias (D·4H,)) → states (1 + 6D, T, N, H)``.

    ``states[0]`` is the layer's output (the directions' h summed), ``states[1 + 6d + q]`` direction d's
    q-th of (i, f, g, o, c, h); zero on padded frames. Differentiable in G, W_hh and the bias."""

    def __init__(self):
        super().__init__()
        check_schedule()
        self.backward_op = _op(BACKWARD, ("states", "lengths", "w_hh", "d_states"))
        self.weight_grad_op = _op(WEIGHT_GRAD, ("states", "d_gates"))
        self.bias_grad_op = _op(BIAS_GRAD, ("d_gates",))
        self.forward_op = _op(FORWARD, ("gates_in", "lengths", "w_hh", "bias"), bprop=self._bprop)

    def _bprop(self, gates_in, lengths, w_hh, bias, states, d_states):
        d_gates = self.backward_op(states, lengths, w_hh, d_states)           # (T, N, D·4H)
        return (d_gates, ops.zeros_like(lengths), self.weight_grad_op(states, d_gates),
                self.bias_grad_op(d_gates))

    def construct(self, gates_in: Tensor, lengths: Tensor, w_hh: Tensor, bias: Tensor) -> Tensor:
        return self.forward_op(gates_in, lengths, w_hh, bias)


class CustomLSTM(nn.Cell):
    """A masked (bi)directional LSTM layer from torch-layout weights: ``x (T, N, D_in)`` → summed
    directions ``(T, N, H)``, zero on padded frames. Holds no parameters (the caller owns them)."""

    def __init__(self):
        super().__init__()
        self.recurrence = MaskedLSTMRecurrence()
        self.project = ops.MatMul(transpose_b=True)

    def construct(self, x: Tensor, lengths: Tensor, w_ih: tuple, w_hh: tuple, b_ih: tuple, b_hh: tuple) -> Tensor:
        weight = ops.cat(w_ih, 0) if len(w_ih) > 1 else w_ih[0]             # (D·4H, D_in)
        bias = ops.cat(tuple(bi + bh for bi, bh in zip(b_ih, b_hh)), 0)     # (D·4H,)
        t, n = x.shape[0], x.shape[1]
        gates_in = self.project(x.reshape(-1, x.shape[2]), weight).reshape(t, n, -1)         # (T, N, D·4H)
        states = self.recurrence(gates_in, lengths.astype(mindspore.int32), ops.stack(w_hh), bias)
        return ops.gather(states, Tensor([0], mindspore.int32), 0).squeeze(0)                # (T, N, H)
