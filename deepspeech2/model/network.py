"""DeepSpeech2: the model zoo's network, with padded frames masked end to end.

``(N, 1, F, T)`` log-spectrogram + ``(N,)`` frame counts → ``(T', N, C)`` log-probabilities +
``(N,)`` output lengths. The default :class:`~deepspeech2.core.config.ModelConfig` is the zoo's
architecture with the zoo's parameter names, so its checkpoints load unchanged. Unlike the zoo,
a zero-padded batch gives each utterance the output it would get alone (eval mode).
"""
from __future__ import annotations

import logging
import numpy as np
import mindspore
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import HeNormal, Uniform, initializer

from deepspeech2.core.config import FeatureConfig, ModelConfig
from deepspeech2.core.device import warn_uncapped_onednn_convs
from deepspeech2.data.features import num_freq_bins
from deepspeech2.data.shapes import conv_output_size, conv_stack, rnn_input_size
from deepspeech2.model.batch_norm import make_batch_norm, resolve_bn_impl
from deepspeech2.model.conv import make_conv2d, resolve_conv_impl
from deepspeech2.model.lstm_kernel import CustomLSTM
from deepspeech2.model.rnn_impl import DirectionLSTM, resolve_rnn_impl

__all__ = ["DeepSpeech2", "count_parameters", "analytic_flops", "ZOO_PARAMETERS"]

log = logging.getLogger(__name__)


ZOO_PARAMETERS = 86_608_096   # trainable parameters of the zoo's network (the default ModelConfig)
GATE_SATURATION = 1e4  # |pre-activation| that pins a gate to exactly 0 or 1 on padded frames


def _activation(name: str) -> nn.Cell:
    if name == "tanh":
        return nn.Tanh()
    if name == "hardtanh":
        return nn.Hardtanh(0.0, 20.0)   # deepspeech.pytorch's clamp to [0, 20]
    raise ValueError(f"model.conv_activation must be tanh or hardtanh, got {name!r}")


def _time_mask(lengths: Tensor, max_len, dtype) -> Tensor:
    """(N, T) 1.0 on valid frames, 0.0 on padding; a constant to autodiff."""
    steps = ops.arange(max_len).astype(lengths.dtype)                  # (T,)
    return ops.stop_gradient((steps.view(1, -1) < lengths.view(-1, 1)).astype(dtype))   # (N, T)


def _masked(x: Tensor, mask: Tensor) -> Tensor:
    """``x * mask`` with the mask first expanded to x's shape: MindSpore 2.10's CPU Mul with a
    broadcast operand is several times slower than with two equal shapes."""
    return x * ops.broadcast_to(mask, x.shape)


def _masked_frames(x: Tensor, lengths: Tensor) -> Tensor:
    """x (N, C, F, T) with each utterance's frames from ``lengths`` on zeroed."""
    return _masked(x, _time_mask(lengths, x.shape[3], x.dtype).view(x.shape[0], 1, 1, -1))


class MaskConv(nn.Cell):
    """Conv blocks (conv → BN → activation) of ``model.conv_stack``; padded frames are zeroed after
    each. Attribute names conv1/bn1, conv2/bn2, ... are the zoo's parameter names."""

    def __init__(self, cfg: ModelConfig, conv_impl: str):
        super().__init__()
        in_ch = 1
        for i, spec in enumerate(conv_stack(cfg), start=1):
            setattr(self, f"conv{i}", make_conv2d(   # zoo init: N(0, 2 / (kernel area × out channels))
                conv_impl, in_ch, cfg.conv_channels, spec.kernel, spec.stride, spec.padding,
                has_bias=cfg.conv_bias, weight_init=HeNormal(mode="fan_out", nonlinearity="relu"),
                input_grad=i > 1))                                           # conv1 reads the features
            setattr(self, f"bn{i}", nn.BatchNorm2d(cfg.conv_channels))
            in_ch = cfg.conv_channels
        self.act = _activation(cfg.conv_activation)
        self.blocks = tuple((getattr(self, f"conv{i}"), getattr(self, f"bn{i}"))
                            for i in range(1, len(conv_stack(cfg)) + 1))

    def construct(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        x = _masked_frames(x, lengths)                                       # (N, 1, F, T)
        for conv, bn in self.blocks:
            x = self.act(bn(conv(x)))                                        # (N, C, F_i, T_i)
            lengths = conv_output_size(lengths, conv.kernel_size[1], conv.stride[1],
                                       conv.padding[2], conv.padding[3])     # (N,)
            x = _masked_frames(x, lengths)
        return x, lengths


class MaskedRNN(nn.Cell):
    """One LSTM/GRU layer over (T, N, D) whose backward direction never reads padding.

    ``impl`` (``model.rnn_impl``, see :mod:`deepspeech2.model.rnn_impl`): ``fused`` runs both
    directions in ONE oneDNN call (CPU weight layout). The input gets an extra feature that is 1 on
    padded frames; its weight is a constant that pins the backward direction's input gate (LSTM)
    to 0 or update gate (GRU) to 1 there, so that direction's state stays exactly zero until it
    reaches the utterance's last valid frame — as if the utterance had been run alone. ``portable``
    (LSTM only) runs one LSTM per direction, the backward one on each utterance's valid frames
    reversed in place (``ReverseSequence``), so it never reads padding either.
    LSTM: torch's equations, gates (i, f, g, o). GRU: oneDNN's "original" GRU (reset gate applied
    to h before the recurrent product), gates (update, reset, candidate) — not torch's variant.
    Directions are summed; padded output frames are zero. Parameters are the same for both impls.
    """

    def __init__(self, rnn_type: str, input_size: int, hidden_size: int, bidirectional: bool,
                 impl: str = "auto"):
        super().__init__()
        gates = {"lstm": 4, "gru": 3}.get(rnn_type)
        if gates is None:
            raise ValueError(f"model.rnn_type must be lstm or gru, got {rnn_type!r}")
        self.hidden, self.bidirectional = hidden_size, bidirectional
        resolved = resolve_rnn_impl(impl, rnn_type, mindspore.get_context("device_target"))
        self.fused = resolved == "fused"
        self.directions = ("", "_reverse") if bidirectional else ("",)
        bound = 1.0 / np.sqrt(hidden_size)
        for suffix in self.directions:
            for name, shape in (("weight_ih_l0", (gates * hidden_size, input_size)),
                                ("weight_hh_l0", (gates * hidden_size, hidden_size)),
                                ("bias_ih_l0", (gates * hidden_size,)), ("bias_hh_l0", (gates * hidden_size,))):
                setattr(self, name + suffix, Parameter(initializer(Uniform(bound), shape), name=name + suffix))
        self.is_lstm = rnn_type == "lstm"
        self.custom = CustomLSTM() if resolved == "custom" else None
        if self.fused:
            self._init_fused(input_size, gates)
        else:
            self.direction = DirectionLSTM(input_size, hidden_size)
            self.reverse = ops.ReverseSequence(seq_dim=0, batch_dim=1)

    def _init_fused(self, input_size: int, gates: int) -> None:
        """The two-direction kernel and the constant input-weight column of the padding feature."""
        hidden, bidirectional = self.hidden, self.bidirectional
        in_size = input_size + 1 if bidirectional else input_size   # + the padding-indicator feature
        if self.is_lstm:
            self.op = ops.LSTM(in_size, hidden, 1, True, bidirectional, 0.0)
        else:
            # MindSpore's private oneDNN GRU (the public API only has nn.GRU's Python loop); imported
            # here so that loading the model never touches a private module unless a GRU is built.
            from mindspore.ops.operations._rl_inner_ops import GRUV2
            self.op = GRUV2(in_size, hidden, 1, True, bidirectional, 0.0)
        pin = np.zeros((gates * hidden, 1), np.float32)             # backward gate 0 (LSTM i→0, GRU u→1)
        pin[:hidden] = -GATE_SATURATION if self.is_lstm else GATE_SATURATION
        self.pin_reverse = Tensor(pin)
        self.pin_forward = Tensor(np.zeros_like(pin))

    def _flat_weights(self, dtype) -> Tensor:
        """[W_ih fwd, W_ih bwd, W_hh fwd, W_hh bwd, b fwd, b bwd] as (K, 1, 1) (oneDNN ldgoi)."""
        if self.bidirectional:
            w_ih = (ops.cat((self.weight_ih_l0, self.pin_forward.astype(dtype)), 1).view(-1),
                    ops.cat((self.weight_ih_l0_reverse, self.pin_reverse.astype(dtype)), 1).view(-1))
            w_hh = (self.weight_hh_l0.view(-1), self.weight_hh_l0_reverse.view(-1))
            bias = (self.bias_ih_l0 + self.bias_hh_l0, self.bias_ih_l0_reverse + self.bias_hh_l0_reverse)
        else:
            w_ih, w_hh = (self.weight_ih_l0.view(-1),), (self.weight_hh_l0.view(-1),)
            bias = (self.bias_ih_l0 + self.bias_hh_l0,)
        return ops.cat(w_ih + w_hh + bias).astype(dtype).view(-1, 1, 1)

    def _direction(self, x: Tensor, h: Tensor, c: Tensor, reverse: bool) -> tuple[Tensor, Tensor, Tensor]:
        """Portable: one direction's LSTM over x (T, N, D) from (h, c) (1, N, H) → y, h_T, c_T."""
        if reverse:
            return self.direction(x, h, c, self.weight_ih_l0_reverse, self.weight_hh_l0_reverse,
                                  self.bias_ih_l0_reverse, self.bias_hh_l0_reverse)
        return self.direction(x, h, c, self.weight_ih_l0, self.weight_hh_l0, self.bias_ih_l0, self.bias_hh_l0)

    def _portable(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x (T, N, D), lengths (N,) → summed directions (T, N, H), padded frames not yet zeroed."""
        h0 = ops.zeros((1, x.shape[1], self.hidden), x.dtype)                # (1, N, H)
        y = self._direction(x, h0, h0, False)[0]                             # (T, N, H)
        if self.bidirectional:
            x_rev = self.reverse(x, lengths)                                 # valid frames reversed
            y = y + self.reverse(self._direction(x_rev, h0, h0, True)[0], lengths)
        return y

    def _weights(self, name: str) -> tuple:
        """One torch-layout weight of every direction, forward first."""
        return tuple(getattr(self, name + suffix) for suffix in self.directions)

    def construct(self, x: Tensor, mask: Tensor, lengths: Tensor) -> Tensor:
        """x (T, N, D) zero on padding, mask (T, N, 1), lengths (N,) → (T, N, H)."""
        if self.custom is not None:
            return self.custom(x, lengths, self._weights("weight_ih_l0"), self._weights("weight_hh_l0"),
                               self._weights("bias_ih_l0"), self._weights("bias_hh_l0"))
        if not self.fused:
            return _masked(self._portable(x, lengths), mask)
        n = x.shape[1]
        if self.bidirectional:
            x = ops.cat((x, 1 - mask), 2)                                    # (T, N, D + 1)
        h0 = ops.zeros((len(self.directions), n, self.hidden), x.dtype)      # (dirs, N, H)
        if self.is_lstm:
            y = self.op(x, h0, h0, self._flat_weights(x.dtype))[0]          # (T, N, dirs * H)
        else:
            y = self.op(x, h0, self._flat_weights(x.dtype), lengths)[0]      # (T, N, dirs * H)
        if self.bidirectional:
            y = y[:, :, :self.hidden] + y[:, :, self.hidden:]                # (T, N, H)
        return _masked(y, mask)

    def run_with_state(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Unidirectional LSTM from a given state, for streaming (no padding): x (T, N, D), h/c (1, N, H)
        → y (T, N, H), h_T, c_T. From zero state it equals ``construct`` on an unpadded batch."""
        if self.bidirectional or not self.is_lstm:
            raise ValueError("run_with_state needs a unidirectional LSTM layer")
        if not self.fused:
            return self._direction(x, h, c, False)
        y, h, c = self.op(x, h, c, self._flat_weights(x.dtype))[:3]
        return y, h, c


class RNNStack(nn.Cell):
    """``num_layers`` MaskedRNN layers (zoo: ``lstms``), optional BatchNorm and dropout before layers 2..N."""

    def __init__(self, cfg: ModelConfig, input_size: int, bn_impl: str = "onednn"):
        super().__init__()
        sizes = [input_size] + [cfg.hidden_size] * (cfg.num_layers - 1)
        layers = nn.CellList([MaskedRNN(cfg.rnn_type, s, cfg.hidden_size, cfg.bidirectional, cfg.rnn_impl)
                              for s in sizes])
        self.layer_name = f"{cfg.rnn_type}s"             # RNN.lstms.{i} are the zoo's names
        setattr(self, self.layer_name, layers)
        self.norms = (nn.CellList([make_batch_norm(bn_impl, cfg.hidden_size) for _ in sizes[1:]])
                      if cfg.rnn_batch_norm else None)
        self.masking_norms = bn_impl == "custom"                 # KernelBatchNorm1d masks its output rows
        self.dropout = nn.Dropout(p=cfg.rnn_dropout) if cfg.rnn_dropout > 0 else None   # identity in eval

    def construct(self, x: Tensor, mask: Tensor, lengths: Tensor) -> Tensor:
        t, n = x.shape[0], x.shape[1]
        for i, layer in enumerate(getattr(self, self.layer_name)):
            if self.norms is not None and i > 0 and self.masking_norms:
                x = self.norms[i - 1](x.view(t * n, -1), mask.view(-1)).view(t, n, -1)   # (T, N, H)
            elif self.norms is not None and i > 0:
                x = _masked(self.norms[i - 1](x.view(t * n, -1)).view(t, n, -1), mask)  # (T, N, H)
            if self.dropout is not None and i > 0:
                x = self.dropout(x)                                          # (T, N, H)
            x = layer(x, mask, lengths)                                      # (T, N, H)
        return x


class Lookahead(nn.Cell):
    """deepspeech.pytorch's lookahead: per-feature weighted sum of the next ``context`` frames."""

    def __init__(self, features: int, context: int, conv_impl: str):
        super().__init__()
        if context < 1:
            raise ValueError(f"model.lookahead_context must be >= 1, got {context}")
        self.conv = make_conv2d(conv_impl, features, features, (1, context + 1), padding=(0, 0, 0, context),
                                group=features)

    def construct(self, x: Tensor) -> Tensor:
        t, n, h = x.shape
        y = self.conv(x.transpose(1, 2, 0).view(n, h, 1, t))               # (N, H, 1, T)
        return y.view(n, h, t).transpose(2, 0, 1)                            # (T, N, H)


class OutputLayer(nn.Cell):
    """Frame-wise (optional BatchNorm →) Dense; ``module`` is the zoo's name for the Dense."""

    def __init__(self, hidden_size: int, num_classes: int, batch_norm: bool, bn_impl: str = "onednn"):
        super().__init__()
        self.norm = make_batch_norm(bn_impl, hidden_size) if batch_norm else None
        self.module = nn.Dense(hidden_size, num_classes, weight_init=Uniform(1.0 / hidden_size), has_bias=False)

    def construct(self, x: Tensor) -> Tensor:
        t, n = x.shape[0], x.shape[1]
        x = x.view(t * n, -1)                                                # (T*N, H)
        if self.norm is not None:
            x = self.norm(x)
        return self.module(x).view(t, n, -1)                                 # (T, N, C)


class DeepSpeech2(nn.Cell):
    """Conv front end → (bi)directional RNN stack → [lookahead] → Dense → log-softmax."""

    def __init__(self, model_cfg: ModelConfig, feature_cfg: FeatureConfig, num_classes: int):
        super().__init__()
        if model_cfg.num_layers < 1 or model_cfg.hidden_size < 1 or model_cfg.conv_channels < 1:
            raise ValueError(f"model sizes must be positive: {model_cfg}")
        if model_cfg.rnn_type == "gru":
            log.warning("rnn_type gru is experimental: MindSpore's GRUV2 backward fails for some shapes "
                        "(PYNATIVE, and GRAPH with some sizes); lstm is the tested choice")
        device = mindspore.get_context("device_target")
        if device != "CPU":
            log.warning("DeepSpeech2 on %s: the portable RNN (model.rnn_impl=%s) was tested only on CPU",
                        device, model_cfg.rnn_impl)
        self.num_freq = num_freq_bins(feature_cfg)
        conv_impl = resolve_conv_impl(model_cfg, device)
        if conv_impl == "onednn" and device == "CPU":
            warn_uncapped_onednn_convs()
        self.conv = MaskConv(model_cfg, conv_impl)
        # a Python int, so the reshape below never derives C*F' from runtime shapes: in GRAPH mode with
        # a dynamic time axis that product was once computed from garbage (GRU step, MindSpore 2.10)
        self.rnn_input_size = rnn_input_size(model_cfg, feature_cfg)
        bn_impl = resolve_bn_impl(model_cfg.bn_impl, device)
        self.RNN = RNNStack(model_cfg, self.rnn_input_size, bn_impl)   # zoo's attribute name
        self.lookahead = None
        if not model_cfg.bidirectional:
            self.lookahead = Lookahead(model_cfg.hidden_size, model_cfg.lookahead_context, conv_impl)
            self.lookahead_act = _activation(model_cfg.conv_activation)
        self.fc = OutputLayer(model_cfg.hidden_size, num_classes, model_cfg.fc_batch_norm, bn_impl)

    def construct(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """x (N, 1, F, T) float32, lengths (N,) int32 → log_probs (T', N, C), out_lengths (N,) int32."""
        lengths = lengths.astype(mindspore.int32)
        x, out_lengths = self.conv(x, lengths)                               # (N, C, F', T'), (N,)
        n, t = x.shape[0], x.shape[3]
        x = x.view(n, self.rnn_input_size, t).transpose(2, 0, 1)             # (T', N, C*F')
        mask = _time_mask(out_lengths, t, x.dtype).transpose(1, 0).view(t, n, 1)  # (T', N, 1)
        x = self.RNN(x, mask, out_lengths)                                   # (T', N, H)
        if self.lookahead is not None:
            x = _masked(self.lookahead_act(self.lookahead(x)), mask)         # (T', N, H)
        x = self.fc(x)                                                       # (T', N, C)
        return ops.log_softmax(x.astype(mindspore.float32), -1), out_lengths


def count_parameters(net: nn.Cell) -> int:
    """Trainable parameters (``ZOO_PARAMETERS`` for the zoo network); BatchNorm statistics excluded."""
    return int(sum(int(np.prod(p.shape)) for p in net.trainable_params()))


def analytic_flops(model_cfg: ModelConfig, feature_cfg: FeatureConfig, n_frames: int, batch: int,
                   num_classes: int = 29) -> float:
    """Forward FLOPs (2 per multiply-add) of convs, RNN matrix products, lookahead and output layer
    for ``batch`` utterances of ``n_frames`` frames; a training step costs about 3×."""
    macs, rows, frames, in_ch = 0, num_freq_bins(feature_cfg), n_frames, 1
    for spec in conv_stack(model_cfg):
        rows = conv_output_size(rows, spec.kernel[0], spec.stride[0], spec.padding[0], spec.padding[1])
        frames = conv_output_size(frames, spec.kernel[1], spec.stride[1], spec.padding[2], spec.padding[3])
        macs += batch * rows * frames * model_cfg.conv_channels * in_ch * spec.kernel[0] * spec.kernel[1]
        in_ch = model_cfg.conv_channels
    gates = 4 if model_cfg.rnn_type == "lstm" else 3
    dirs = 2 if model_cfg.bidirectional else 1
    h, size = model_cfg.hidden_size, rnn_input_size(model_cfg, feature_cfg)
    for _ in range(model_cfg.num_layers):
        macs += batch * frames * dirs * gates * h * (size + h)
        size = h
    if not model_cfg.bidirectional:
        macs += batch * frames * h * (model_cfg.lookahead_context + 1)
    macs += batch * frames * h * num_classes
    return 2.0 * macs
