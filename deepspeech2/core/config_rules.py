"""Numeric ranges of the config keys: one table, one message format, checked when a config is loaded.

A value outside its range is reported as ``section.key: must be > 0, got -0.004`` (every violation,
joined by "; "), so a bad ``optim.lr`` or ``data.batch_size`` stops a command before any work starts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Range", "RANGE_RULES", "ORDER_RULES", "REQUIRES_RULES", "range_errors"]


@dataclass(frozen=True)
class Range:
    """An interval; ``None`` = unbounded on that side; ``*_open`` excludes the bound itself."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def contains(self, value: float) -> bool:
        if isinstance(value, float) and math.isnan(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def describe(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


POSITIVE, AT_LEAST_ONE, NON_NEGATIVE = Range(0, low_open=True), Range(1), Range(0)
PROBABILITY = Range(0, 1)
MAX_NICE = 19                       # the lowest scheduling priority of a Linux thread
RANGE_RULES: dict[str, Range] = {
    "data.batch_size": AT_LEAST_ONE,
    "data.eval_batch_size": AT_LEAST_ONE,
    "data.num_workers": NON_NEGATIVE,
    "data.prefetch_size": NON_NEGATIVE,
    "data.worker_nice": Range(0, MAX_NICE),
    "data.bucket_frames": NON_NEGATIVE,
    "data.min_duration": NON_NEGATIVE,
    "data.max_duration": NON_NEGATIVE,
    "data.augment.speed_perturb": Range(0, 0.5, high_open=True),
    "data.augment.noise_prob": PROBABILITY,
    "data.augment.freq_masks": NON_NEGATIVE,
    "data.augment.freq_mask_width": NON_NEGATIVE,
    "data.augment.time_masks": NON_NEGATIVE,
    "data.augment.time_mask_width": NON_NEGATIVE,
    "data.augment.time_mask_max_ratio": PROBABILITY,
    "data.augment.vtlp": Range(0, 0.5, high_open=True),
    "data.augment.start_epoch": NON_NEGATIVE,
    "features.sample_rate": AT_LEAST_ONE,
    "features.window_size": POSITIVE,
    "features.window_stride": POSITIVE,
    "features.n_mels": AT_LEAST_ONE,
    "model.conv_channels": AT_LEAST_ONE,
    "model.hidden_size": AT_LEAST_ONE,
    "model.num_layers": AT_LEAST_ONE,
    "model.lookahead_context": NON_NEGATIVE,
    "model.rnn_dropout": Range(0, 1, high_open=True),
    "optim.lr": POSITIVE,
    "optim.weight_decay": NON_NEGATIVE,
    "optim.beta1": Range(0, 1, high_open=True),
    "optim.beta2": Range(0, 1, high_open=True),
    "optim.eps": POSITIVE,
    "optim.warmup_steps": NON_NEGATIVE,
    "optim.anneal": POSITIVE,
    "optim.min_lr": NON_NEGATIVE,
    "optim.max_grad_norm": NON_NEGATIVE,
    "train.epochs": AT_LEAST_ONE,
    "train.max_steps": NON_NEGATIVE,
    "train.device_id": NON_NEGATIVE,
    "train.cpu_threads": NON_NEGATIVE,
    "train.loss_scale_value": POSITIVE,
    "train.loss_scale_window": AT_LEAST_ONE,
    "train.log_interval": AT_LEAST_ONE,
    "train.save_interval_steps": AT_LEAST_ONE,
    "train.keep_last": AT_LEAST_ONE,      # 0 would delete the checkpoint just written
    "train.max_nonfinite_in_row": AT_LEAST_ONE,
    "eval.beam_width": AT_LEAST_ONE,
    "eval.cutoff_prob": Range(0, 1, low_open=True),
    "eval.cutoff_top_n": AT_LEAST_ONE,
    "eval.oov_penalty": NON_NEGATIVE,
}
# (lower, upper): the first key's value must not exceed the second's
ORDER_RULES: tuple[tuple[str, str], ...] = (("data.augment.noise_snr_min", "data.augment.noise_snr_max"),)
# (key, other key, value): a non-zero first key needs the other key to have that value
REQUIRES_RULES: tuple[tuple[str, str, str], ...] = (("data.augment.vtlp", "features.type", "fbank"),)


def _lookup(tree: dict, dotted: str) -> Any:
    node = tree
    for part in dotted.split("."):
        node = node[part]
    return node


def range_errors(tree: dict) -> list[str]:
    """Every rule the nested config dict ``tree`` breaks, one message per key."""
    errors = [f"{key}: must be {rule.describe()}, got {_lookup(tree, key)!r}"
              for key, rule in RANGE_RULES.items() if not rule.contains(_lookup(tree, key))]
    for low_key, high_key in ORDER_RULES:
        low, high = _lookup(tree, low_key), _lookup(tree, high_key)
        if low > high:
            errors.append(f"{low_key}: must be <= {high_key} ({high!r}), got {low!r}")
    for key, other, needed in REQUIRES_RULES:
        if _lookup(tree, key) and _lookup(tree, other) != needed:
            errors.append(f"{key}: needs {other}={needed}, got {other}={_lookup(tree, other)!r}")
    return errors
