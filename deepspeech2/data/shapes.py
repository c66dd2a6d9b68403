"""The conv front end's shape and the length formulas derived from it (pure: no MindSpore).

Both the data pipeline (which utterances are long enough for CTC) and the model (layer sizes,
output lengths) read the conv stack from here, so each formula exists once.
"""
from __future__ import annotations

from dataclasses import dataclass

from deepspeech2.core.config import FeatureConfig, ModelConfig
from deepspeech2.data.features import num_freq_bins

__all__ = ["ConvSpec", "CONV_STACK", "CONV_STACKS", "conv_stack", "conv_output_size", "output_lengths",
           "rnn_input_size", "ReceptiveField", "conv_receptive_field", "output_frame_seconds"]


@dataclass(frozen=True)
class ConvSpec:
    """One conv layer over (frequency, time): kernel, stride and zero padding per axis."""
    kernel: tuple[int, int]           # (freq, time)
    stride: tuple[int, int]           # (freq, time)
    padding: tuple[int, int, int, int]  # (top, bottom, left, right) = (freq lo, freq hi, time lo, time hi)


# The zoo's conv front end (time stride 2: 50 output frames/s); its checkpoints need it.
CONV_STACK: tuple[ConvSpec, ...] = (
    ConvSpec(kernel=(41, 11), stride=(2, 2), padding=(20, 20, 5, 5)),
    ConvSpec(kernel=(21, 11), stride=(2, 1), padding=(10, 10, 5, 5)),
)
# Front ends selectable by ``model.conv_stack``; every size and length formula below is derived
# from the chosen one. Time stride 4 (25 frames/s) still leaves CTC room for ~15 characters/s of
# read speech and quarters the RNN's work; "small" stacks (3×3 kernels, ESPnet-style subsampling)
# cost a few percent of the zoo's conv FLOPs.
CONV_STACKS: dict[str, tuple[ConvSpec, ...]] = {
    "zoo": CONV_STACK,
    "zoo_t4": (ConvSpec((41, 11), (2, 2), (20, 20, 5, 5)), ConvSpec((21, 11), (2, 2), (10, 10, 5, 5))),
    "small_t4": (ConvSpec((3, 3), (2, 2), (1, 1, 1, 1)), ConvSpec((3, 3), (2, 2), (1, 1, 1, 1))),
    "small_t3": (ConvSpec((3, 3), (2, 3), (1, 1, 1, 1)), ConvSpec((3, 3), (2, 1), (1, 1, 1, 1))),
}


def conv_stack(model_cfg: ModelConfig) -> tuple[ConvSpec, ...]:
    """The conv front end named by ``model_cfg.conv_stack``."""
    return CONV_STACKS[model_cfg.conv_stack]


def conv_output_size(size, kernel: int, stride: int, pad_lo: int, pad_hi: int):
    """Output length of a convolution along one axis (ints, numpy arrays or int Tensors)."""
    return (size + pad_lo + pad_hi - kernel) // stride + 1


def output_lengths(lengths, stack: tuple[ConvSpec, ...] = CONV_STACK):
    """Valid output frames for ``lengths`` input frames: ``T' = (T - 1) // 2 + 1`` for the zoo.

    Pure: works on Python/numpy ints and on int Tensors inside a graph. Only the conv ``stack``
    changes the time axis (the lookahead keeps it).
    """
    for spec in stack:
        lengths = conv_output_size(lengths, spec.kernel[1], spec.stride[1], spec.padding[2], spec.padding[3])
    return lengths


def rnn_input_size(model_cfg: ModelConfig, feature_cfg: FeatureConfig) -> int:
    """Features per frame entering the first RNN: channels × frequency rows (32 × 41 = 1312)."""
    rows = num_freq_bins(feature_cfg)
    for spec in conv_stack(model_cfg):
        rows = conv_output_size(rows, spec.kernel[0], spec.stride[0], spec.padding[0], spec.padding[1])
    return model_cfg.conv_channels * rows


@dataclass(frozen=True)
class ReceptiveField:
    """Output frame ``i`` of the conv stack reads input frames ``[i*stride - left, i*stride + right]``."""
    stride: int
    left: int
    right: int


def conv_receptive_field(stack: tuple[ConvSpec, ...]) -> ReceptiveField:
    """Time-axis receptive field of a conv stack (zoo: stride 2, 15 frames each side)."""
    stride, left, right = 1, 0, 0
    for spec in reversed(stack):
        kernel, step, pad_lo = spec.kernel[1], spec.stride[1], spec.padding[2]
        stride, left, right = stride * step, left * step + pad_lo, right * step + kernel - 1 - pad_lo
    return ReceptiveField(stride, left, right)


def output_frame_seconds(model_cfg: ModelConfig, feature_cfg: FeatureConfig) -> float:
    """Seconds per output frame: ``window_stride`` × the conv stack's total time stride."""
    return feature_cfg.window_stride * conv_receptive_field(conv_stack(model_cfg)).stride
