"""The conv front end's convolutions: oneDNN's (``nn.Conv2d``), patch gather + one MatMul, or this
package's own kernel (``kernels/conv2d.cc``).

Why: on AVX-512 CPUs MindSpore 2.10's oneDNN takes its reference kernels for fp32 convolution
forward and backward-data (``jit_uni_ncsp:conv+ref:any`` under ONEDNN_VERBOSE, for every kernel
shape, stride, dilation and group count tried), so a model with oneDNN convs caps oneDNN at AVX2
(:func:`deepspeech2.core.device.cap_onednn_isa`) — which also runs every LSTM and MatMul at half vector
width — and oneDNN's conv primitives keep ~2 GB of scratch for the zoo's 41×11 / 21×11 kernels.

- ``matmul``: patch extraction (``ops.unfold``, MindSpore's own Im2Col kernel) and a MatMul. The copy
  costs (kernel area) × the input, kept for the backward pass, so it pays only for small kernels (the
  lab's 3×3 stacks).
- ``custom``: :class:`KernelConv2d`, a Custom aot op whose passes are GEMMs over one output row at a time
  (oneDNN's sgemm, at full width): no scratch beyond one row's patches, only the input saved.
- ``onednn``: ``nn.Conv2d`` (and the AVX2 cap on AVX-512 CPUs).

:func:`resolve_conv_impl` picks one for ``auto``. Parameter names and shapes equal ``nn.Conv2d``'s
(``weight`` (C_out, C_in, kh, kw), ``bias``), so a checkpoint loads into any implementation.
"""
from __future__ import annotations

import logging
import math
from functools import lru_cache
from pathlib import Path

from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import HeUniform, initializer

from deepspeech2.core.config import ConvImpl, ModelConfig, choices
from deepspeech2.core.device import has_avx512
from deepspeech2.data.shapes import conv_stack
from deepspeech2.model.custom_kernels import KERNEL_DIR, build_library, custom_op

__all__ = ["CONV_IMPLS", "MATMUL_CONV_MAX_TAPS", "KernelConv2d", "MatMulConv2d", "conv_kernel_library",
           "exportable_conv_impl", "make_conv2d", "resolve_conv_impl"]

log = logging.getLogger(__name__)

CONV_IMPLS = choices(ConvImpl)
# im2col keeps one copy of the input per kernel tap for the backward pass: 9 taps (3×3) cost less
# than the conv's own activations; the zoo's 451-tap (41×11) kernel would need gigabytes.
MATMUL_CONV_MAX_TAPS = 9
CONV_SOURCE = KERNEL_DIR / "conv2d.cc"
CONV_FORWARD, CONV_INPUT_GRAD, CONV_WEIGHT_GRAD = "Conv2dForward", "Conv2dInputGrad", "Conv2dWeightGrad"


@lru_cache(maxsize=None)
def conv_kernel_library(stride: tuple[int, int], padding: tuple[int, int, int, int]) -> Path:
    """The conv kernel compiled for one geometry (stride (h, w), padding (top, bottom, left, right)): its C++
    infer functions see only shapes, so the geometry is built in."""
    names = ("DS2_STRIDE_H", "DS2_STRIDE_W", "DS2_PAD_TOP", "DS2_PAD_BOTTOM", "DS2_PAD_LEFT", "DS2_PAD_RIGHT")
    return build_library(CONV_SOURCE, tuple(zip(names, (*stride, *padding))), user="model.conv_impl=custom",
                         fallback="model.conv_impl=onednn")


def _conv_kernel_builds(model_cfg: ModelConfig) -> bool:
    """Whether the conv kernel is (or can be) built here for every conv of the front end; why not is logged
    (``auto`` then takes oneDNN's convs)."""
    try:
        for spec in conv_stack(model_cfg):
            conv_kernel_library(tuple(spec.stride), tuple(spec.padding))
    except RuntimeError as err:
        log.warning("model.conv_impl=auto: MindSpore's convolutions instead of our kernel (%s)", err)
        return False
    return True


def resolve_conv_impl(model_cfg: ModelConfig, device: str) -> str:
    """``model.conv_impl``; ``auto`` on CPU: ``custom`` (our kernel) for the zoo's large kernels on every CPU
    (the zoo's conv front end, batch 8 × 10 s, took 1.7 s and 0.7 GB with it, 4.0 s and 2.0 GB with oneDNN's
    AVX2 conv), and for front ends whose kernels all have ≤ MATMUL_CONV_MAX_TAPS taps on AVX-512 CPUs (the
    lab_small step, batch 8 × 10 s, EPYC, two alternating rounds: 0.477 / 0.484 s against 0.516 / 0.503 with
    ``matmul`` and 0.578 / 0.591 with ``onednn``); such small kernels keep ``onednn`` on other CPUs. When our kernel
    cannot be built, ``matmul`` for small kernels on AVX-512 and ``onednn`` otherwise. Off CPU ``auto`` and
    ``custom`` → ``onednn``. The lookahead conv follows the front end."""
    requested = model_cfg.conv_impl
    if requested not in CONV_IMPLS:
        raise ValueError(f"unknown model.conv_impl {requested!r}; valid: {CONV_IMPLS}")
    if device != "CPU" and requested in ("auto", "custom"):
        return "onednn"
    if requested != "auto":
        return requested
    if all(spec.kernel[0] * spec.kernel[1] <= MATMUL_CONV_MAX_TAPS for spec in conv_stack(model_cfg)):
        if not has_avx512():
            return "onednn"
        return "custom" if _conv_kernel_builds(model_cfg) else "matmul"
    return "custom" if _conv_kernel_builds(model_cfg) else "onednn"


def exportable_conv_impl(model_cfg: ModelConfig, device: str) -> str:
    """The ``model.conv_impl`` an exported graph (MINDIR) is built with: the resolved one, but ``onednn`` for
    ``custom`` (no Custom op referring to a library built on this machine; same parameters and outputs)."""
    resolved = resolve_conv_impl(model_cfg, device)
    return "onednn" if resolved == "custom" else resolved


def make_conv2d(impl: str, in_channels: int, out_channels: int, kernel_size: tuple[int, int],
                stride: tuple[int, int] = (1, 1), padding: tuple[int, int, int, int] = (0, 0, 0, 0),
                group: int = 1, has_bias: bool = False, weight_init=None, input_grad: bool = True) -> nn.Cell:
    """A padded NCHW convolution: ``nn.Conv2d`` (``onednn``), :class:`MatMulConv2d` (``matmul``, and
    ``custom``'s depthwise convs: the lookahead) or :class:`KernelConv2d` (``custom``; ``input_grad=False``:
    the input needs no gradient, e.g. the features)."""
    if impl == "matmul" or (impl == "custom" and group != 1):
        return MatMulConv2d(in_channels, out_channels, kernel_size, stride, padding, group, has_bias, weight_init)
    if impl == "custom":
        return KernelConv2d(in_channels, out_channels, kernel_size, stride, padding, has_bias, weight_init,
                            input_grad=input_grad)
    if impl == "onednn":
        return nn.Conv2d(in_channels, out_channels, kernel_size, stride, pad_mode="pad", padding=padding,
                         group=group, has_bias=has_bias, weight_init=weight_init)
    raise ValueError(f"conv impl must be resolved to onednn, matmul or custom, got {impl!r}")


class _Conv2dParameters(nn.Cell):
    """``nn.Conv2d``'s parameters (``weight``, optional ``bias``, same names, shapes and default init) and
    geometry attributes (``kernel_size``, ``stride``, ``padding`` (top, bottom, left, right))."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int], stride: tuple[int, int],
                 padding: tuple[int, int, int, int], group: int, has_bias: bool, weight_init, bias_init="zeros"):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = tuple(kernel_size), tuple(stride)
        self.padding = tuple(padding)               # (top, bottom, left, right), as nn.Conv2d
        shape = (out_channels, in_channels // group, *self.kernel_size)
        if weight_init is None:                     # nn.Conv2d's default
            weight_init = HeUniform(math.sqrt(5))
        self.weight = Parameter(initializer(weight_init, shape), name="weight")
        self.has_bias = has_bias
        self.bias = Parameter(initializer(bias_init, [out_channels]), name="bias") if has_bias else None

    def _add_bias(self, y: Tensor) -> Tensor:
        return y + self.bias.reshape(1, -1, 1, 1) if self.has_bias else y


class KernelConv2d(_Conv2dParameters):
    """``nn.Conv2d(pad_mode="pad", group=1)`` on NCHW input computed by ``kernels/conv2d.cc`` (see the module
    docstring); ``input_grad=False`` gives the input a zero gradient without computing it."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int],
                 stride: tuple[int, int], padding: tuple[int, int, int, int], has_bias: bool = False,
                 weight_init=None, bias_init="zeros", input_grad: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, 1, has_bias, weight_init, bias_init)
        self.input_grad = input_grad
        library = conv_kernel_library(self.stride, self.padding)
        self.input_grad_op = custom_op(library, CONV_INPUT_GRAD, ("x", "weight", "d_out"))
        self.weight_grad_op = custom_op(library, CONV_WEIGHT_GRAD, ("x", "weight", "d_out"))
        self.forward_op = custom_op(library, CONV_FORWARD, ("x", "weight"), bprop=self._bprop)

    def _bprop(self, x, weight, out, d_out):
        d_x = self.input_grad_op(x, weight, d_out) if self.input_grad else ops.zeros_like(x)
        return d_x, self.weight_grad_op(x, weight, d_out)

    def construct(self, x: Tensor) -> Tensor:
        return self._add_bias(self.forward_op(x, self.weight))


class MatMulConv2d(_Conv2dParameters):
    """``nn.Conv2d(pad_mode="pad")`` on NCHW input computed as gathered patches @ weight.

    ``group`` is 1 (a dense conv: one MatMul) or ``in_channels == out_channels`` (depthwise, as the
    lookahead: a weighted sum of the shifted taps)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int],
                 stride: tuple[int, int], padding: tuple[int, int, int, int], group: int = 1,
                 has_bias: bool = False, weight_init=None, bias_init="zeros"):
        if group != 1 and not group == in_channels == out_channels:
            raise ValueError(f"MatMulConv2d supports group 1 or depthwise, got group {group} for "
                             f"{in_channels} -> {out_channels} channels")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, group, has_bias, weight_init,
                         bias_init)
        self.depthwise = group != 1
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
            return self._add_bias(y)
        return self._project(ops.unfold(x, self.kernel_size, 1, 0, self.stride), n, ho, wo)

    def _project(self, patches: Tensor, n: int, ho: int, wo: int) -> Tensor:
        """(N, C*kh*kw, Ho*Wo) patches, rows ordered (C, kh, kw) like the weight → (N, C_out, Ho, Wo)."""
        weight = ops.broadcast_to(self.weight.reshape(1, self.out_channels, self.patch_size),
                                  (n, self.out_channels, self.patch_size))
        y = self.batch_matmul(weight, patches)       # (N, C_out, Ho*Wo); ops.matmul adds 4 Transposes
        return self._add_bias(y.reshape(n, self.out_channels, ho, wo))
