"""Acoustic models for inference: a checkpoint or an exported MINDIR behind one numpy interface."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from deepspeech2.core.config import Config, FeatureConfig, ModelConfig, config_from_dict
from deepspeech2.data.shapes import output_frame_seconds
from deepspeech2.data.vocab import Vocab

__all__ = ["AcousticModel", "ModelFileError", "load_acoustic_model", "MINDIR_SIDECAR_SUFFIX"]

log = logging.getLogger(__name__)
MINDIR_SIDECAR_SUFFIX = ".json"


class ModelFileError(ValueError):
    """A model file or its sidecar cannot be used (corrupt, or from different exports)."""


@dataclass
class AcousticModel:
    """``forward(features (N, 1, F, T) float32, lengths (N,) int32) -> (log_probs (N, T', C), out_lengths (N,))``,
    all numpy, plus what is needed to feed and decode it."""

    forward: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
    vocab: Vocab
    features: FeatureConfig
    source: str
    model: ModelConfig                 # the architecture (from the checkpoint's or the MINDIR's sidecar)
    parameters: int                    # trainable parameters
    network: Any = None                # the DeepSpeech2 cell (checkpoints only; streaming needs it)

    @property
    def frame_seconds(self) -> float:
        """Duration of one output frame (the feature hop times the conv front end's time stride)."""
        return output_frame_seconds(self.model, self.features)


def _mindir_conv_impl(path: Path) -> str:
    """The conv implementation a MINDIR was exported with (its sidecar's model.conv_impl; exports
    before the key existed hold oneDNN convs). An unreadable sidecar is reported by _load_mindir."""
    try:
        return json.loads(path.with_suffix(MINDIR_SIDECAR_SUFFIX).read_text(encoding="utf-8"))["model"]["conv_impl"]
    except (OSError, ValueError, KeyError, TypeError):
        return "onednn"


def _load_mindir(path: Path) -> AcousticModel:
    import mindspore
    from mindspore import Tensor, nn

    sidecar = path.with_suffix(MINDIR_SIDECAR_SUFFIX)
    if not sidecar.is_file():
        raise FileNotFoundError(f"{path}: missing {sidecar.name} (feature config and labels written by ds2-export)")
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        vocab = Vocab(tuple(meta["labels"]), meta["blank_symbol"])
        features = config_from_dict(meta["features"], FeatureConfig, "features")
        model_cfg = config_from_dict(meta["model"], ModelConfig, "model")
    except (ValueError, KeyError, TypeError) as err:
        raise ModelFileError(f"{sidecar}: not a ds2-export sidecar ({err}); export the model again with ds2-export") from None
    try:
        graph = nn.GraphCell(mindspore.load(str(path)))
    except (RuntimeError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelFileError(f"{path}: not a loadable MINDIR ({reason}); export it again with ds2-export") from None
    is_probs = meta.get("output") == "probs"

    def forward(features: np.ndarray, lengths: np.ndarray):
        out, out_lengths = graph(Tensor(features), Tensor(lengths))
        out = np.transpose(out.asnumpy(), (1, 0, 2))
        return (np.log(np.maximum(out, np.finfo(np.float32).tiny)) if is_probs else out), out_lengths.asnumpy()

    parameters = int(sum(int(np.prod(p.shape)) for p in graph.trainable_params()))
    model = AcousticModel(forward, vocab, features, str(path), model_cfg, parameters)
    _check_sidecar_matches(model, sidecar)
    return model


def _check_sidecar_matches(model: AcousticModel, sidecar: Path) -> None:
    """Run one second of silence through the MINDIR with the sidecar's feature size; its output must
    have one column per sidecar label. A sidecar of another export fails here, not mid-evaluation."""
    from deepspeech2.data.features import num_freq_bins

    frames = max(1, round(1.0 / model.features.window_stride))
    try:
        log_probs, _ = model.forward(np.zeros((1, 1, num_freq_bins(model.features), frames), np.float32),
                                     np.array([frames], np.int32))
        problem = "" if log_probs.shape[-1] == len(model.vocab.labels) else \
            f"{log_probs.shape[-1]} outputs for {len(model.vocab.labels)} labels"
    except (RuntimeError, ValueError, TypeError) as err:
        problem = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if problem:
        raise ModelFileError(f"{model.source} does not match its sidecar {sidecar.name} ({problem}); "
                             "export both again with ds2-export")


def load_acoustic_model(path: str | Path, cfg: Config) -> AcousticModel:
    """Load ``.mindir`` (with its sidecar JSON) or a checkpoint (ours or the zoo's)."""
    from deepspeech2.core.device import init_device
    from deepspeech2.data.vocab import build_vocab
    from deepspeech2.model.build import build_network, init_device_for, wrap_network
    from deepspeech2.model.network import count_parameters
    from deepspeech2.training.checkpoint import config_for_checkpoint

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    if path.suffix.lower() == ".mindir":
        init_device(cfg.train.device_target, cfg.train.device_id, cfg.train.cpu_threads,
                    onednn_conv=_mindir_conv_impl(path) != "matmul")
        return _load_mindir(path)
    cfg = config_for_checkpoint(cfg, path)
    init_device_for(cfg)
    vocab = build_vocab(cfg)
    net = build_network(replace(cfg, train=replace(cfg.train, amp_level="O0")), vocab, pretrained=str(path))
    return AcousticModel(wrap_network(net), vocab, cfg.features, str(path), cfg.model, count_parameters(net), net)

