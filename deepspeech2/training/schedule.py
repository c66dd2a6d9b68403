"""Learning-rate schedule: linear warm-up, then division by ``anneal`` after every epoch.

A pure function of the global step, so a resumed run continues at exactly the same rate.
"""
from __future__ import annotations

from deepspeech2.core.config import OptimConfig

__all__ = ["lr_at"]


def lr_at(step: int, steps_per_epoch: int, cfg: OptimConfig) -> float:
    """Learning rate of (0-based) global ``step``.

    ``lr * min(1, (step + 1) / warmup_steps) / anneal ** epoch``, floored at ``min_lr``
    (the floor does not apply during warm-up).
    """
    if steps_per_epoch <= 0:
        raise ValueError(f"steps_per_epoch must be positive, got {steps_per_epoch}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    epoch = step // steps_per_epoch
    rate = cfg.lr / (cfg.anneal ** epoch) if cfg.anneal > 0 else cfg.lr
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return rate * (step + 1) / cfg.warmup_steps
    return max(rate, min(cfg.min_lr, cfg.lr))
