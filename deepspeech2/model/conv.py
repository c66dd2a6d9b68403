"""Convolution as patch gather + one batched MatMul: the conv front end without oneDNN's conv kernels.

Why: on AVX-512 CPUs MindSpore 2.10's oneDNN takes its reference kernels for fp32 convolution
forward and backward-data (``jit_uni_ncsp:conv+ref:any`` under ONEDNN_VERBOSE, for every kernel
shape, stride, dilation and group count tried), so the package caps oneDNN at AVX2 — which also
runs every LSTM and MatMul at half vector width. A conv written as patch extraction
(``ops.unfold``, MindSpore's own Im2Col kernel) and a MatMul needs no conv primitive, so the cap can go.

The copy costs (kernel area) × the input, so it pays only for small kernels (the lab's 3×3
stacks); :func:`resolve_conv_impl` keeps oneDNN's Conv2d for the zoo's 41×11 / 21×11 kernels.
Parameter names and shapes equal ``nn.Conv2d``'s (``weight`` (C_out, C_in, kh, kw), ``bias``), so a
checkpoint loads into either implementation.
"""
from __future__ import annotations

import math

from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import HeUniform, initializer

from deepspeech2.core.config import ConvImpl, ModelConfig, choices
from deepspeech2.core.device import has_avx512
from deepspeech2.data.shapes import conv_stack

__all__ = ["CONV_IMPLS", "MATMUL_CONV_MAX_TAPS", "MatMulConv2d", "make_conv2d", "resolve_conv_impl"]

CONV_IMPLS = choices(ConvImpl)
# im2col keeps one copy of the input per kernel tap for the backward pass: 9 taps (3×3) cost less
# than the conv's own activations; the zoo's 451-tap (41×11) kernel would need gigabytes.
MATMUL_CONV_MAX_TAPS = 9


def resolve_conv_impl(model_cfg: ModelConfig, device: str) -> str:
    """``model.conv_impl``; ``auto`` → ``matmul`` on AVX-512 CPUs when every front-end kernel has
    ≤ MATMUL_CONV_MAX_TAPS taps, else ``onednn``. The lookahead conv follows the front end."""
    requested = model_cfg.conv_impl
    if requested not in CONV_IMPLS:
        raise ValueError(f"unknown model.conv_impl {requested!r}; valid: {CONV_IMPLS}")
    if requested != "auto":
        return requested
    small = all(spec.kernel[0] * spec.kernel[1] <= MATMUL_CONV_MAX_TAPS for spec in conv_stack(model_cfg))
    return "matmul" if device == "CPU" and has_avx512() and small else "onednn"


def make_conv2d(impl: str, in_channels: int, out_channels: int, kernel_size: tuple[int, int],
                stride: tuple[int, int] = (1, 1), padding: tuple[int, int, int, int] = (0, 0, 0, 0),
                group: int = 1, has_bias: bool = False, weight_init=None) -> nn.Cell:
    """A padded NCHW convolution: ``nn.Conv2d`` (``onednn``) or :class:`MatMulConv2d` (``matmul``)."""
    if impl == "matmul":
        return MatMulConv2d(in_channels, out_channels, kernel_size, stride, padding, group, has_bias, weight_init)
    if impl == "onednn":
        return nn.Conv2d(in_channels, out_channels, kernel_size, stride, pad_mode="pad", padding=padding,
                         group=group, has_bias=has_bias, weight_init=weight_init)
    raise ValueError(f"conv impl must be resolved to onednn or matmul, got {impl!r}")


class MatMulConv2d(nn.Cell):
    """``nn.Conv2d(pad_mode="pad")`` on NCHW input computed as gathered patches @ weight.

    ``group`` is 1 (a dense conv: one MatMul) or ``in_channels == out_channels`` (depthwise, as the
    lookahead: a weighted sum of the shifted taps)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int],
                 stride: tuple[int, int], padding: tuple[int, int, int, int], group: int = 1,
                 has_bias: bool = False, weight_init=None, bias_init="zeros"):
        super().__init__()
        if group != 1 and not group == in_channels == out_channels:
            raise ValueError(f"MatMulConv2d supports group 1 or depthwise, got group {group} for "
                             f"{in_channels} -> {out_channels} channels")
        self.depthwise = group != 1
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = tuple(kernel_size), tuple(stride)
        self.padding = tuple(padding)               # (top, bottom, left, right), as nn.Conv2d
        shape = (out_channels, in_channels // group, *self.kernel_size)
        if weight_init is None:                     # nn.Conv2d's default
            weight_init = HeUniform(math.sqrt(5))
        self.weight = Parameter(initializer(weight_init, shape), name="weight")
        self.has_bias = has_bias
        self.bias = Parameter(initializer(bias_init, [out_channels]), name="bias") if has_bias else None
        self.taps = tuple((i, j) for i in range(self.kernel_size[0]) for j in range(self.kernel_size[1]))
        self.patch_size = in_channels * math.prod(self.kernel_size)
        self.batch_matmul = ops.BatchMatMul()
        self.symmetric = self.padding[0] == self.padding[1] and self.padding[2] == self.padding[3]

    def construct(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        top, bottom, left, right = self.padding
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        ho = (h + top + bottom - kh) // sh + 1
        wo = (w + left + right - kw) // sw + 1
        if self.symmetric and not self.depthwise:   # Im2Col pads itself: PadV3 costs ~3x the conv's MatMul
            patches = ops.unfold(x, self.kernel_size, 1, (top, left), self.stride)  # (N, C*kh*kw, Ho*Wo)
            return self._project(patches, n, ho, wo)
        x = ops.pad(x, (left, right, top, bottom))                            # (N, C, H+pads, W+pads)
        if self.depthwise:
            # ops.strided_slice, not x[..., i:j]: stepped indexing's gradient crashes PYNATIVE (2.10)
            taps = ops.stack([ops.strided_slice(x, (0, 0, i, j), (n, c, i + sh * (ho - 1) + 1, j + sw * (wo - 1) + 1),
                                                (1, 1, sh, sw))
                              for i, j in self.taps], axis=2)                 # (N, C, kh*kw, Ho, Wo)
            y = (taps * self.weight.reshape(1, self.out_channels, len(self.taps), 1, 1)).sum(axis=2)
            return y + self.bias.reshape(1, -1, 1, 1) if self.has_bias else y
        return self._project(ops.unfold(x, self.kernel_size, 1, 0, self.stride), n, ho, wo)

    def _project(self, patches: Tensor, n: int, ho: int, wo: int) -> Tensor:
        """(N, C*kh*kw, Ho*Wo) patches, rows ordered (C, kh, kw) like the weight → (N, C_out, Ho, Wo)."""
        weight = ops.broadcast_to(self.weight.reshape(1, self.out_channels, self.patch_size),
                                  (n, self.out_channels, self.patch_size))
        y = self.batch_matmul(weight, patches)       # (N, C_out, Ho*Wo); ops.matmul adds 4 Transposes
        y = y.reshape(n, self.out_channels, ho, wo)
        return y + self.bias.reshape(1, -1, 1, 1) if self.has_bias else y
