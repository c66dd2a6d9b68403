"""Export: ``python export.py --pre_trained_model_path CKPT`` / ``ds2-export`` → MINDIR + sidecar JSON.

The MINDIR takes ``features (N, 1, F, T)`` float32 and ``lengths (N,)`` int32 with dynamic batch and
time, and returns time-major ``log_probs`` (or ``probs``) ``(T', N, C)`` and ``out_lengths (N,)``.
The sidecar ``<name>.json`` carries the feature config, labels and blank, so the file is usable alone.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from deepspeech2.core.config import Config, ExportFormat, ExportOutput, choices

__all__ = ["ExportError", "export_model", "FORMATS", "OUTPUTS"]

log = logging.getLogger(__name__)
FORMATS = choices(ExportFormat)
OUTPUTS = choices(ExportOutput)
_SUFFIX = {"MINDIR": ".mindir", "ONNX": ".onnx", "AIR": ".air"}


class ExportError(ValueError):
    """The requested export cannot be produced."""


def _check_format(fmt: str, device_target: str) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"unknown file_format {fmt!r}; valid: {FORMATS}")
    if fmt == "ONNX":
        raise ExportError("ONNX export is not supported for DeepSpeech2 on MindSpore 2.10: ONNX export needs "
                          "static shapes and writes padded convolutions with the wrong pad order, which would "
                          "silently change the model's output; export MINDIR instead")
    if fmt == "AIR" and device_target != "Ascend":
        raise ExportError("AIR export needs an Ascend device (--device_target Ascend); use MINDIR elsewhere")


def _export_cell(net, probs: bool):
    from mindspore import nn, ops

    class ExportNet(nn.Cell):
        """The network with an optional softmax on the output."""

        def __init__(self):
            super().__init__()
            self.net = net

        def construct(self, features, lengths):
            log_probs, out_lengths = self.net(features, lengths)
            return (ops.exp(log_probs) if probs else log_probs), out_lengths

    cell = ExportNet()
    cell.set_train(False)
    return cell


def export_model(cfg: Config, ckpt: str | Path) -> Path:
    """Build the network of ``ckpt`` (its sidecar config, or ``cfg``'s preset for a zoo checkpoint),
    load the weights and export it with dynamic batch and time; returns the model file path."""
    import mindspore
    from mindspore import Tensor

    from deepspeech2.data.vocab import build_vocab
    from deepspeech2.model.build import build_network, init_device_for
    from deepspeech2.model.batch_norm import exportable_bn_impl
    from deepspeech2.model.conv import exportable_conv_impl
    from deepspeech2.model.rnn_impl import exportable_rnn_impl
    from deepspeech2.data.features import num_freq_bins
    from deepspeech2.inference.acoustic import MINDIR_SIDECAR_SUFFIX
    from deepspeech2.training.checkpoint import config_for_checkpoint

    fmt = cfg.export.file_format.upper()
    _check_format(fmt, cfg.train.device_target)
    if cfg.export.output not in OUTPUTS:
        raise ExportError(f"unknown export.output {cfg.export.output!r}; valid: {OUTPUTS}")
    if not Path(ckpt).is_file():
        raise ExportError(f"checkpoint not found: {ckpt}")
    cfg = config_for_checkpoint(cfg, ckpt)
    device = cfg.train.device_target
    model_cfg = dataclasses.replace(cfg.model, conv_impl=exportable_conv_impl(cfg.model, device),
                                    bn_impl=exportable_bn_impl(cfg.model.bn_impl, device),
                                    rnn_impl=exportable_rnn_impl(cfg.model.rnn_impl, device))
    cfg = dataclasses.replace(cfg, model=model_cfg)      # the sidecar names the conv and RNN ops in the graph
    init_device_for(cfg)
    vocab = build_vocab(cfg)
    net = build_network(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, amp_level="O0")),
                        vocab, pretrained=str(ckpt))
    cell = _export_cell(net, cfg.export.output == "probs")
    base = Path(cfg.export.file_name)
    base.parent.mkdir(parents=True, exist_ok=True)
    features = Tensor(shape=[None, 1, num_freq_bins(cfg.features), None], dtype=mindspore.float32)
    lengths = Tensor(shape=[None], dtype=mindspore.int32)
    mindspore.export(cell, features, lengths, file_name=str(base), file_format=fmt)
    out = base.with_name(base.name + _SUFFIX[fmt]) if base.suffix.lower() != _SUFFIX[fmt] else base
    meta = {"format": fmt, "inputs": {"features": "(N, 1, F, T) float32", "lengths": "(N,) int32"},
            "outputs": {cfg.export.output: "(T', N, C) float32, time-major", "out_lengths": "(N,) int32"},
            "output": cfg.export.output, "features": dataclasses.asdict(cfg.features),
            "labels": list(vocab.labels), "blank_symbol": vocab.blank_symbol, "blank": vocab.blank,
            "model": dataclasses.asdict(cfg.model), "checkpoint": str(Path(ckpt).resolve())}
    out.with_suffix(MINDIR_SIDECAR_SUFFIX).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return out
