"""Acoustic models for inference: a checkpoint or an exported MINDIR behind one numpy interface."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from deepspeech2.core.config import Config, FeatureConfig
from deepspeech2.data.vocab import Vocab

__all__ = ["AcousticModel", "load_acoustic_model", "MINDIR_SIDECAR_SUFFIX"]

log = logging.getLogger(__name__)
MINDIR_SIDECAR_SUFFIX = ".json"


@dataclass
class AcousticModel:
    """``forward(features (N, 1, F, T) float32, lengths (N,) int32) -> (log_probs (N, T', C), out_lengths (N,))``,
    all numpy, plus what is needed to feed and decode it."""

    forward: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
    vocab: Vocab
    features: FeatureConfig
    source: str


def _load_mindir(path: Path) -> AcousticModel:
    import mindspore
    from mindspore import Tensor, nn

    sidecar = path.with_suffix(MINDIR_SIDECAR_SUFFIX)
    if not sidecar.is_file():
        raise FileNotFoundError(f"{path}: missing {sidecar.name} (feature config and labels written by ds2-export)")
    meta = json.loads(sidecar.read_text(encoding="utf-8"))
    graph = nn.GraphCell(mindspore.load(str(path)))
    is_probs = meta.get("output") == "probs"

    def forward(features: np.ndarray, lengths: np.ndarray):
        out, out_lengths = graph(Tensor(features), Tensor(lengths))
        out = np.transpose(out.asnumpy(), (1, 0, 2))
        return (np.log(np.maximum(out, np.finfo(np.float32).tiny)) if is_probs else out), out_lengths.asnumpy()

    return AcousticModel(forward, Vocab(tuple(meta["labels"]), meta["blank_symbol"]),
                         FeatureConfig(**meta["features"]), str(path))


def load_acoustic_model(path: str | Path, cfg: Config) -> AcousticModel:
    """Load ``.mindir`` (with its sidecar JSON) or a checkpoint (ours or the zoo's)."""
    from deepspeech2.core.device import init_device
    from deepspeech2.data.vocab import build_vocab
    from deepspeech2.model.build import build_network, wrap_network
    from deepspeech2.training.checkpoint import config_for_checkpoint

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    init_device(cfg.train.device_target, cfg.train.device_id, cfg.train.cpu_threads)
    if path.suffix.lower() == ".mindir":
        return _load_mindir(path)
    cfg = config_for_checkpoint(cfg, path)
    vocab = build_vocab(cfg)
    net = build_network(replace(cfg, train=replace(cfg.train, amp_level="O0")), vocab, pretrained=str(path))
    return AcousticModel(wrap_network(net), vocab, cfg.features, str(path))

