"""Export: MINDIR with dynamic batch and time equals the checkpoint network; clear errors otherwise."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from deepspeech2.inference.export import ExportError, export_model
from deepspeech2.inference.acoustic import load_acoustic_model


def test_mindir_matches_checkpoint_at_several_shapes(tiny_config, tiny_checkpoint, tmp_path):
    cfg = dataclasses.replace(tiny_config, export=dataclasses.replace(tiny_config.export, file_name=str(tmp_path / "m")))
    path = export_model(cfg, tiny_checkpoint)
    assert path.suffix == ".mindir" and path.is_file()
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["blank"] == 28 and meta["features"]["window"] == "hamming" and len(meta["labels"]) == 29
    ckpt_model, mindir_model = load_acoustic_model(tiny_checkpoint, cfg), load_acoustic_model(path, cfg)
    rng = np.random.default_rng(0)
    for n, t in ((1, 120), (3, 257)):
        feats = rng.standard_normal((n, 1, 161, t)).astype(np.float32)
        lengths = np.array([t - 7 * i for i in range(n)], np.int32)
        a, la = ckpt_model.forward(feats, lengths)
        b, lb = mindir_model.forward(feats, lengths)
        np.testing.assert_array_equal(la, lb)
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_custom_rnn_checkpoint_exports_without_custom_ops(tiny_checkpoint_with, tmp_path):
    """A checkpoint trained with model.rnn_impl=custom exports a MINDIR of the built-in kernels (the file must
    not refer to a library built on this machine) with the same outputs."""
    ckpt, cfg = tiny_checkpoint_with("model.rnn_impl=custom")
    cfg = dataclasses.replace(cfg, export=dataclasses.replace(cfg.export, file_name=str(tmp_path / "m")))
    path = export_model(cfg, ckpt)
    assert json.loads(path.with_suffix(".json").read_text())["model"]["rnn_impl"] == "fused"
    assert b"masked_lstm" not in path.read_bytes()
    feats = np.random.default_rng(1).standard_normal((2, 1, 161, 90)).astype(np.float32)
    lengths = np.array([90, 61], np.int32)
    a, _ = load_acoustic_model(ckpt, cfg).forward(feats, lengths)
    b, _ = load_acoustic_model(path, cfg).forward(feats, lengths)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_probs_output(tiny_config, tiny_checkpoint, tmp_path):
    cfg = dataclasses.replace(tiny_config, export=dataclasses.replace(
        tiny_config.export, file_name=str(tmp_path / "p"), output="probs"))
    model = load_acoustic_model(export_model(cfg, tiny_checkpoint), cfg)
    log_probs, _ = model.forward(np.ones((1, 1, 161, 50), np.float32), np.array([50], np.int32))
    np.testing.assert_allclose(np.exp(log_probs).sum(-1), 1.0, atol=1e-4)


@pytest.mark.parametrize("fmt, match", [("ONNX", "wrong pad order"), ("AIR", "Ascend"), ("TFLITE", "unknown")])
def test_unsupported_formats_fail_clearly(tiny_config, tiny_checkpoint, fmt, match):
    cfg = dataclasses.replace(tiny_config, export=dataclasses.replace(tiny_config.export, file_format=fmt))
    with pytest.raises(ExportError, match=match):
        export_model(cfg, tiny_checkpoint)
