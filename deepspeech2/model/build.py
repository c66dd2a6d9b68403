"""The network as train, eval, export and transcribe build it, and its numpy-in/numpy-out forward."""
from __future__ import annotations

import logging
from typing import Callable

import numpy as np

from deepspeech2.core.config import Config
from deepspeech2.data.vocab import Vocab

__all__ = ["build_network", "init_device_for", "wrap_network"]

log = logging.getLogger(__name__)


def init_device_for(cfg: Config) -> None:
    """``train.device_*`` for a process that runs ``cfg.model``: oneDNN's AVX2 cap only when the model
    has oneDNN convolutions (``model.conv_impl``, see :mod:`deepspeech2.model.conv`)."""
    from deepspeech2.core.device import init_device
    from deepspeech2.model.conv import resolve_conv_impl

    target = cfg.train.device_target
    init_device(target, cfg.train.device_id, cfg.train.cpu_threads,
                onednn_conv=resolve_conv_impl(cfg.model, target) == "onednn")


def build_network(cfg: Config, vocab: Vocab, pretrained: str = ""):
    """DeepSpeech2 for ``cfg.model``/``cfg.features``, optionally initialised from a checkpoint
    (ours or the zoo's), then cast for ``train.amp_level``."""
    from deepspeech2.model.amp import apply_amp
    from deepspeech2.model.weights import load_weights
    from deepspeech2.model.network import DeepSpeech2, count_parameters

    net = DeepSpeech2(cfg.model, cfg.features, len(vocab))
    log.info("DeepSpeech2: %s rnn %dx%d, %s parameters", cfg.model.rnn_type, cfg.model.num_layers,
             cfg.model.hidden_size, f"{count_parameters(net):,}")
    if pretrained:
        report = load_weights(net, pretrained, allow_partial=cfg.train.allow_partial_load)
        log.info("loaded %s: %s", pretrained, report)
    return apply_amp(net, cfg.train)


def wrap_network(net, graph: bool = True) -> Callable:
    """Numpy-in/numpy-out forward of a DeepSpeech2 cell (eval mode), batch-first log-probs. GRAPH: compiled
    once with unknown batch and time (each padded shape compiled anew took ~3 s, more than the forward of a
    batch of 16 utterances)."""
    import mindspore
    from mindspore import Tensor

    net.set_train(False)
    run = net
    if graph:
        def network(features, lengths):
            return net(features, lengths)

        run = mindspore.jit(mindspore.enable_dynamic(
            features=Tensor(shape=[None, 1, net.num_freq, None], dtype=mindspore.float32),
            lengths=Tensor(shape=[None], dtype=mindspore.int32))(network))

    def forward(features: np.ndarray, lengths: np.ndarray):
        log_probs, out_lengths = run(Tensor(features), Tensor(lengths))
        return np.transpose(log_probs.asnumpy(), (1, 0, 2)), out_lengths.asnumpy()

    return forward
