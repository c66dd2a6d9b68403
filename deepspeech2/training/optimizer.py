"""The optimizer a training run steps with."""
from __future__ import annotations

from deepspeech2.core.config import Config

__all__ = ["build_optimizer"]


def build_optimizer(net, cfg: Config):
    """Adam (or AdamWeightDecay when ``optim.weight_decay`` > 0) whose learning rate is a
    Parameter the training loop sets every step from :func:`deepspeech2.training.schedule.lr_at`."""
    import numpy as np
    from mindspore import Tensor, nn

    lr = Tensor(np.float32(cfg.optim.lr))
    params = net.trainable_params()
    common = dict(learning_rate=lr, beta1=cfg.optim.beta1, beta2=cfg.optim.beta2, eps=cfg.optim.eps)
    if cfg.optim.weight_decay > 0:
        decay = [p for p in params if p.ndim > 1]          # no decay on biases and BatchNorm
        no_decay = [p for p in params if p.ndim <= 1]
        groups = [{"params": decay, "weight_decay": cfg.optim.weight_decay}, {"params": no_decay}]
        return nn.AdamWeightDecay(groups, **common)
    return nn.Adam(params, **common)
