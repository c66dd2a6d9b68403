"""Factories shared by train, eval, export and transcribe: vocabulary, network, optimizer."""
from __future__ import annotations

import logging

from deepspeech2.config import Config
from deepspeech2.vocab import Vocab

__all__ = ["build_vocab", "build_network", "build_optimizer"]

log = logging.getLogger(__name__)


def build_vocab(cfg: Config) -> Vocab:
    """The vocabulary named by ``data.labels`` (default: the zoo's 29 labels)."""
    return Vocab.from_file(cfg.data.labels)


def build_network(cfg: Config, vocab: Vocab, pretrained: str = ""):
    """DeepSpeech2 for ``cfg.model``/``cfg.features``, optionally initialised from a checkpoint
    (ours or the zoo's), then cast for ``train.amp_level``."""
    from deepspeech2.amp import apply_amp
    from deepspeech2.checkpoint import load_weights
    from deepspeech2.model import DeepSpeech2, count_parameters

    net = DeepSpeech2(cfg.model, cfg.features, len(vocab))
    log.info("DeepSpeech2: %s rnn %dx%d, %s parameters", cfg.model.rnn_type, cfg.model.num_layers,
             cfg.model.hidden_size, f"{count_parameters(net):,}")
    if pretrained:
        report = load_weights(net, pretrained, allow_partial=cfg.train.allow_partial_load)
        log.info("loaded %s: %s", pretrained, report)
    return apply_amp(net, cfg.train)


def build_optimizer(net, cfg: Config):
    """Adam (or AdamWeightDecay when ``optim.weight_decay`` > 0) whose learning rate is a
    Parameter the training loop sets every step from :func:`deepspeech2.schedule.lr_at`."""
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
