"""Mixed precision with correct loss scaling (multiply the loss, divide the gradients once).

The zoo passed ``loss_scale=1024`` to Adam without scaling the loss, which only divided the
gradients by 1024. Here the scaler multiplies the loss before differentiation and ``unscale``
divides the gradients exactly once; a dynamic scaler halves on overflow and grows after
``loss_scale_window`` finite steps, and overflow steps skip the update.
"""
from __future__ import annotations

import logging

from deepspeech2.core.config import AmpDtype, AmpLevel, LossScale, TrainConfig, choices

__all__ = ["AMP_LEVELS", "LOSS_SCALES", "apply_amp", "make_loss_scaler", "loss_scale_value"]

log = logging.getLogger(__name__)
AMP_LEVELS = choices(AmpLevel)
LOSS_SCALES = choices(LossScale)
SCALE_FACTOR = 2  # dynamic scaler: multiply/divide the scale by this
_DTYPES = choices(AmpDtype)


def apply_amp(net, cfg: TrainConfig):
    """Cast ``net`` for ``cfg.amp_level`` (O0 = fp32, unchanged). CTC and softmax stay float32:
    the network's output is cast back to float32 and the loss casts its inputs too."""
    import mindspore

    if cfg.amp_level not in AMP_LEVELS:
        raise ValueError(f"unknown amp_level {cfg.amp_level!r}; valid: {AMP_LEVELS}")
    if cfg.amp_dtype not in _DTYPES:
        raise ValueError(f"unknown amp_dtype {cfg.amp_dtype!r}; valid: {_DTYPES}")
    if cfg.amp_level == "O0":
        return net
    if cfg.device_target == "CPU" and cfg.amp_dtype == "bfloat16":
        raise ValueError("bfloat16 is not supported by MindSpore's CPU kernels (Conv2D, MatMul, LSTM); "
                         "use amp_dtype=float16 or amp_level=O0 on CPU")
    from deepspeech2.model.batch_norm import KernelBatchNorm1d
    from deepspeech2.model.conv import KernelConv2d
    from deepspeech2.model.network import MaskedRNN

    dtype = getattr(mindspore, cfg.amp_dtype)
    log.info("mixed precision %s with %s (masked RNN layers and our conv and BatchNorm kernels stay float32)", cfg.amp_level,
             cfg.amp_dtype)
    net = mindspore.amp.auto_mixed_precision(net, cfg.amp_level, dtype=dtype)
    for _, cell in net.cells_and_names():
        # MaskedRNN: the padding mask saturates a gate pre-activation; its float16 backward gives NaN.
        # KernelConv2d, KernelBatchNorm1d: the kernels compute in float32.
        if isinstance(cell, (MaskedRNN, KernelConv2d, KernelBatchNorm1d)):
            cell.to_float(mindspore.float32)
    return net


def make_loss_scaler(cfg: TrainConfig):
    """A ``mindspore.amp`` loss scaler: static, dynamic, or for ``none`` a static scale of 1 whose
    ``scale``/``unscale`` return their inputs (dividing by 1 would only copy every gradient)."""
    from mindspore import amp

    if cfg.loss_scale not in LOSS_SCALES:
        raise ValueError(f"unknown loss_scale {cfg.loss_scale!r}; valid: {LOSS_SCALES}")
    if cfg.loss_scale == "dynamic":
        return amp.DynamicLossScaler(cfg.loss_scale_value, SCALE_FACTOR, cfg.loss_scale_window)
    if cfg.loss_scale == "static":
        return amp.StaticLossScaler(cfg.loss_scale_value)

    class UnitLossScaler(amp.StaticLossScaler):
        def scale(self, inputs):
            return inputs

        def unscale(self, inputs):
            return inputs

    return UnitLossScaler(1.0)


def loss_scale_value(scaler) -> float:
    """The scaler's current scale as a Python float (for logs and checkpoints)."""
    return float(scaler.scale_value.asnumpy())
