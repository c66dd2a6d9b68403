"""One optimisation step: forward, CTC loss, scaled gradients, clipping, finite check, update.

Returned as a function so the loop can run it in GRAPH mode (``mindspore.jit``) or PYNATIVE.
"""
from __future__ import annotations

from typing import Callable

import mindspore
from mindspore import Tensor, nn, ops

from deepspeech2.model.amp import make_loss_scaler
from deepspeech2.core.config import Config, JitLevel, choices
from deepspeech2.data.features import num_freq_bins

__all__ = ["global_norm", "clip_by_norm", "make_train_step"]

JIT_LEVELS = choices(JitLevel)
NORM_EPS = 1e-6  # keeps the clip factor finite for an all-zero gradient


def _sum_of_squares(grad: mindspore.Tensor) -> mindspore.Tensor:
    """``sum(grad ** 2)`` as the product of the flattened gradient with itself: MindSpore 2.10's CPU
    Square + ReduceSum took ~1 ms per weight matrix of the lab model (13.6 ms of its step), the MatMul a
    quarter of that."""
    flat = grad.astype(mindspore.float32).reshape(1, -1)                     # (1, n)
    return ops.matmul(flat, flat.reshape(-1, 1)).reshape(())


def global_norm(grads: tuple) -> mindspore.Tensor:
    """L2 norm over all gradient tensors (float32 scalar)."""
    return ops.sqrt(ops.addn([_sum_of_squares(g) for g in grads]))


def clip_by_norm(grads: tuple, norm: mindspore.Tensor, max_norm: float) -> tuple:
    """Scale all gradients by ``min(1, max_norm / norm)`` (global-norm clipping, norm given)."""
    factor = ops.minimum(ops.ones_like(norm), max_norm / (norm + NORM_EPS))
    return tuple([g * factor.astype(g.dtype) for g in grads])


def make_train_step(net: nn.Cell, loss_fn: nn.Cell, optimizer: nn.Optimizer, cfg: Config,
                    grad_reducer: nn.Cell | None = None, graph: bool = True) -> tuple[Callable, object]:
    """Build ``step(features, feature_lengths, targets, target_lengths, lr) -> (loss, grad_norm, finite)``.

    ``lr`` (float32 scalar tensor) is assigned to the optimizer's learning rate inside the step: a
    Parameter changed from Python with ``set_data`` is not seen by a compiled graph, which is how
    a schedule silently stops being applied.

    The loss is multiplied by the loss scale before differentiation; gradients are divided once (not at
    all without loss scaling), averaged over data-parallel ranks, checked for inf/NaN through their
    global norm and the loss (a non-finite step skips the update and lowers a dynamic scale), clipped
    to ``optim.max_grad_norm``, then applied.
    Returns the step function and the loss scaler (its state belongs in checkpoints).
    """
    scaler = make_loss_scaler(cfg.train)
    max_norm = cfg.optim.max_grad_norm

    def forward(features, feature_lengths, targets, target_lengths):
        log_probs, out_lengths = net(features, feature_lengths)
        loss = loss_fn(log_probs, targets, out_lengths, target_lengths)
        return scaler.scale(loss), loss

    grad_fn = mindspore.value_and_grad(forward, None, optimizer.parameters, has_aux=True)

    def step(features, feature_lengths, targets, target_lengths, lr):
        ops.assign(optimizer.learning_rate, lr)
        (_, loss), grads = grad_fn(features, feature_lengths, targets, target_lengths)
        grads = scaler.unscale(grads)
        if grad_reducer is not None:
            grads = grad_reducer(grads)
        norm = global_norm(grads)
        finite = ops.logical_and(ops.isfinite(norm), ops.isfinite(loss))   # an inf/NaN gradient makes the norm one
        scaler.adjust(finite)
        if max_norm > 0:
            grads = clip_by_norm(grads, norm, max_norm)
        if finite:
            loss = ops.depend(loss, optimizer(grads))
        return loss, norm, finite

    if not graph:
        return step, scaler
    if cfg.train.jit_level not in JIT_LEVELS:
        raise ValueError(f"train.jit_level must be one of {JIT_LEVELS}, got {cfg.train.jit_level!r}")
    inputs = dynamic_batch_inputs(num_freq_bins(cfg.features))
    return mindspore.jit(mindspore.enable_dynamic(**inputs)(step), jit_level=cfg.train.jit_level), scaler


def dynamic_batch_inputs(n_freq: int) -> dict:
    """Input declarations with unknown batch, time and target length: GRAPH mode compiles the step
    once instead of once per padded shape. The frequency axis stays static: the RNN input size is
    derived from it (the GRU kernel's shape check rejects an unknown one)."""
    return {"features": Tensor(shape=[None, 1, n_freq, None], dtype=mindspore.float32),
            "feature_lengths": Tensor(shape=[None], dtype=mindspore.int32),
            "targets": Tensor(shape=[None, None], dtype=mindspore.int32),
            "target_lengths": Tensor(shape=[None], dtype=mindspore.int32)}

