"""``model.bn_impl``: the BatchNorm over frames between the RNN layers and before the output layer.

``onednn`` is ``nn.BatchNorm1d``. On CPU MindSpore 2.10 runs it as NCHW with a 1 × 1 image, one strided pass per
channel: ~10 ms forward and ~5 ms backward for the lab's (2664, 256) — three of them were 45 ms of a 0.59-s
lab_small step. ``custom`` (``auto``'s choice on CPU) computes the same function in this package's kernel
(``kernels/batch_norm.cc``, Custom aot ops, built with g++ like the LSTM's), which streams the rows in order and
also multiplies each output row by the frame mask. Same parameters (names, shapes, init), the same training and
inference outputs and moving statistics (momentum, unbiased moving variance) within fp32 rounding
(``tests/test_batch_norm.py``), so checkpoints move freely between the two; an exported MINDIR holds
``nn.BatchNorm1d``.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import mindspore
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import initializer

from deepspeech2.core.config import BnImpl, choices
from deepspeech2.model.custom_kernels import KERNEL_DIR, build_library, custom_op, resolve_kernel_impl

__all__ = ["BN_IMPLS", "KernelBatchNorm1d", "batch_norm_library", "exportable_bn_impl", "make_batch_norm",
           "resolve_bn_impl"]


BN_IMPLS = choices(BnImpl)
SOURCE = KERNEL_DIR / "batch_norm.cc"
MOMENTUM = 0.1             # weight of the batch statistics in the moving ones: nn.BatchNorm1d's default


@lru_cache(maxsize=1)
def batch_norm_library() -> Path:
    """Path of the compiled BatchNorm kernel (:func:`deepspeech2.model.custom_kernels.build_library`)."""
    return build_library(SOURCE, user="model.bn_impl=custom", fallback="model.bn_impl=onednn")


def resolve_bn_impl(requested: str, device: str) -> str:
    """``onednn`` or ``custom`` for ``model.bn_impl`` on ``device``: ``auto`` = ``custom`` on CPU when g++ builds
    the kernel (else ``onednn``, logged), ``onednn`` elsewhere; ``custom`` off CPU → ``onednn``."""
    return resolve_kernel_impl("model.bn_impl", requested, BN_IMPLS, device, batch_norm_library, "onednn")


def exportable_bn_impl(requested: str, device: str) -> str:
    """An exported graph (MINDIR) holds ``nn.BatchNorm1d`` (no Custom op referring to a library built here)."""
    resolve_bn_impl(requested, device)     # the same validation
    return "onednn"


class KernelBatchNorm1d(nn.Cell):
    """``nn.BatchNorm1d(num_features)`` over ``x (M, C)`` whose output rows are multiplied by ``mask (M,)``
    (1.0 valid, 0.0 padding; none: all rows kept, a drop-in for ``nn.BatchNorm1d``). Training: normalised with the batch's statistics, which update the moving ones
    (``moving = (1 - MOMENTUM) * moving + MOMENTUM * batch``, the variance unbiased); inference: with the
    moving ones. Differentiable in x, gamma and beta in both modes."""

    def __init__(self, num_features: int):
        super().__init__()
        self.gamma = Parameter(initializer("ones", (num_features,)), name="gamma")
        self.beta = Parameter(initializer("zeros", (num_features,)), name="beta")
        self.moving_mean = Parameter(initializer("zeros", (num_features,)), name="mean", requires_grad=False)
        self.moving_variance = Parameter(initializer("ones", (num_features,)), name="variance", requires_grad=False)
        library = batch_norm_library()
        self.stats_op = custom_op(library, "BatchNormStats", ("x",), self._stats_bprop)
        self.param_grad_op = custom_op(library, "BatchNormParamGrad", ("x", "stats", "dy", "mask"))
        self.input_grad_op = custom_op(library, "BatchNormInputGrad",
                                       ("x", "stats", "gamma", "dy", "mask", "param_grads"))
        inputs = ("x", "stats", "gamma", "beta", "mask")
        self.apply_op = custom_op(library, "BatchNormApply", inputs, self._apply_bprop)
        self.apply_fixed_op = custom_op(library, "BatchNormApply", inputs, self._apply_fixed_bprop)

    @staticmethod
    def _stats_bprop(x, stats, d_stats):
        return (ops.zeros_like(x),)      # the apply op's bprop differentiates through the statistics

    def _apply_bprop(self, x, stats, gamma, beta, mask, y, dy):
        """Training: the statistics are x's, so dL/dx also flows through them."""
        param_grads = self.param_grad_op(x, stats, dy, mask)                          # (2, C)
        dx = self.input_grad_op(x, stats, gamma, dy, mask, param_grads)               # (M, C)
        return dx, ops.zeros_like(stats), param_grads[0], param_grads[1], ops.zeros_like(mask)

    def _apply_fixed_bprop(self, x, stats, gamma, beta, mask, y, dy):
        """Inference: the moving statistics are constants (dL/dx = gamma / sqrt(var + eps) * dy * mask)."""
        param_grads = self.param_grad_op(x, stats, dy, mask)                          # (2, C)
        dx = self.input_grad_op(x, stats, gamma, dy, mask, ops.zeros_like(param_grads))
        return dx, ops.zeros_like(stats), param_grads[0], param_grads[1], ops.zeros_like(mask)

    def construct(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if mask is None:                                                              # every row kept
            mask = ops.ones(x.shape[:1], x.dtype)
        if self.training:
            stats = self.stats_op(x)                                                  # (2, C): mean, variance
            batch = ops.stop_gradient(stats)
            rows = ops.cast(ops.shape(x)[0], mindspore.float32)
            unbiased = batch[1] * rows / ops.maximum(rows - 1.0, 1.0)
            stats = ops.depend(stats, ops.assign(self.moving_mean,
                                                 self.moving_mean * (1.0 - MOMENTUM) + batch[0] * MOMENTUM))
            stats = ops.depend(stats, ops.assign(self.moving_variance,
                                                 self.moving_variance * (1.0 - MOMENTUM) + unbiased * MOMENTUM))
            return self.apply_op(x, stats, self.gamma, self.beta, mask)
        stats = ops.stack((self.moving_mean, self.moving_variance))
        return self.apply_fixed_op(x, stats, self.gamma, self.beta, mask)


def make_batch_norm(impl: str, num_features: int) -> nn.Cell:
    """``nn.BatchNorm1d`` (``onednn``) or :class:`KernelBatchNorm1d` (``custom``, which also takes a row mask:
    ``bn(x, mask)``); the same parameter names and ``bn(x)`` either way."""
    if impl == "custom":
        return KernelBatchNorm1d(num_features)
    if impl != "onednn":
        raise ValueError(f"make_batch_norm takes a resolved model.bn_impl (onednn or custom), got {impl!r}")
    return nn.BatchNorm1d(num_features)
