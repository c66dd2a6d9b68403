"""Which masked-RNN implementation a device gets, and the portable one-direction LSTM.

``fused`` runs both directions in one CPU kernel call whose flat weight uses oneDNN's layout (CPU
only). ``custom`` (CPU, LSTM; what ``auto`` picks on CPU when it can be built) runs the recurrence in
this package's own kernel (:mod:`deepspeech2.model.lstm_kernel`); a model file exported from it uses
``fused`` instead, so that the file does not depend on a library built on the exporting machine. ``portable``
runs one single-direction LSTM per direction from torch-layout parameters (``weight_ih_l0`` (4H, D),
``weight_hh_l0`` (4H, H), ``bias_ih_l0``/``bias_hh_l0`` (4H,), gates i, f, g, o), packed for the
device's kernel the way MindSpore 2.10's own ``nn.LSTM`` packs them: ``ops.LSTM`` on CPU (summed bias)
and GPU (both biases, cuDNN), ``ops.DynamicRNN`` on Ascend (gates i, g, f, o; a (D + H, 4H) weight;
float16).
"""
from __future__ import annotations

import logging

import mindspore
from mindspore import Tensor, nn, ops

from deepspeech2.core.config import RnnImpl, choices

log = logging.getLogger(__name__)

__all__ = ["RNN_IMPLS", "resolve_rnn_impl", "exportable_rnn_impl", "pack_lstm_weights", "DirectionLSTM"]

RNN_IMPLS = choices(RnnImpl)
DEVICES = ("CPU", "GPU", "Ascend")


def resolve_rnn_impl(requested: str, rnn_type: str, device: str) -> str:
    """``fused``, ``custom`` or ``portable`` for ``model.rnn_impl`` on ``device``. ``auto`` = on CPU our
    kernel for an LSTM (fused for a GRU, or when the kernel cannot be built here: logged), portable
    elsewhere; ``custom`` = our kernel on CPU, portable elsewhere (so a lab preset runs on any device).
    ValueError for a combination that cannot run (fused off CPU, a portable or custom GRU)."""
    if requested not in RNN_IMPLS:
        raise ValueError(f"model.rnn_impl must be one of {RNN_IMPLS}, got {requested!r}")
    if requested == "fused" and device != "CPU":
        raise ValueError(f"model.rnn_impl=fused runs a CPU kernel; on {device} use model.rnn_impl=auto or portable")
    if device != "CPU":
        impl = "portable"
    elif requested == "auto":
        impl = "custom" if rnn_type == "lstm" and _custom_kernel_builds() else "fused"
    else:
        impl = requested
    if impl != "fused" and rnn_type != "lstm":
        raise ValueError(f"model.rnn_type={rnn_type} has only the fused CPU implementation "
                         f"(model.rnn_impl=fused on CPU); the {impl} RNN is an LSTM")
    return impl


def _custom_kernel_builds() -> bool:
    """Whether our LSTM kernel is (or can be) built on this machine; why not is logged once per build
    attempt (``auto`` then falls back to the fused LSTM)."""
    from deepspeech2.model.lstm_kernel import kernel_library

    try:
        kernel_library()
    except RuntimeError as err:
        log.warning("model.rnn_impl=auto: the fused LSTM instead of our kernel (%s)", err)
        return False
    return True


def exportable_rnn_impl(requested: str, device: str) -> str:
    """The ``model.rnn_impl`` an exported graph (MINDIR) for ``device`` is built with: ``auto`` and
    ``custom`` → ``fused`` on CPU, ``portable`` elsewhere (same parameters, same outputs within fp32
    tolerance, no Custom op referring to a library built on this machine)."""
    if requested in ("auto", "custom"):
        return "fused" if device == "CPU" else "portable"
    return requested


def pack_lstm_weights(w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor,
                      device: str) -> tuple[Tensor, Tensor | None]:
    """Torch-layout weights of one direction → ``(weight, bias)`` for ``device``'s kernel.

    CPU: flat ``[W_ih, W_hh, b_ih + b_hh]`` as (K, 1, 1), bias None. GPU: flat
    ``[W_ih, W_hh, b_ih, b_hh]`` (K, 1, 1), bias None. Ascend: ``[W_ih | W_hh]ᵀ`` (D + H, 4H) and the
    summed bias (4H,), both with the gates reordered to (i, g, f, o).
    """
    if device == "Ascend":
        order = (0, 2, 1, 3)                          # (i, f, g, o) → (i, g, f, o)
        gates_w = ops.split(ops.cat((w_ih, w_hh), 1), w_ih.shape[0] // 4, 0)
        gates_b = ops.split(b_ih + b_hh, b_ih.shape[0] // 4, 0)
        weight = ops.cat(tuple(gates_w[k] for k in order), 0).transpose(1, 0)   # (D + H, 4H)
        return weight, ops.cat(tuple(gates_b[k] for k in order), 0)            # (4H,)
    if device == "GPU":
        parts = (w_ih.view(-1), w_hh.view(-1), b_ih, b_hh)
    elif device == "CPU":
        parts = (w_ih.view(-1), w_hh.view(-1), b_ih + b_hh)
    else:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    return ops.cat(parts).view(-1, 1, 1), None


class DirectionLSTM(nn.Cell):
    """One direction of one LSTM layer from given torch-layout weights, on the current device's kernel.

    x (T, N, D), h0/c0 (1, N, H) → y (T, N, H), h_T (1, N, H), c_T (1, N, H). Holds no parameters:
    the caller owns them (so their names are the caller's).
    """

    def __init__(self, input_size: int, hidden_size: int, device: str | None = None):
        super().__init__()
        self.device = device or mindspore.get_context("device_target")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}")
        if self.device == "Ascend":
            self.op = ops.DynamicRNN()                 # float16 only (Ascend's LSTM kernel)
        else:
            self.op = ops.LSTM(input_size, hidden_size, 1, True, False, 0.0)

    def construct(self, x: Tensor, h0: Tensor, c0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor,
                  b_hh: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        weight, bias = pack_lstm_weights(w_ih, w_hh, b_ih, b_hh, self.device)
        if self.device == "Ascend":
            half = mindspore.float16
            y, h, c = self.op(x.astype(half), weight.astype(half), bias.astype(half), None,
                              h0.astype(half), c0.astype(half))[:3]              # (T, N, H) each
            return y.astype(x.dtype), h[-1:].astype(x.dtype), c[-1:].astype(x.dtype)
        y, h, c = self.op(x, h0, c0, weight.astype(x.dtype))[:3]
        return y, h, c
