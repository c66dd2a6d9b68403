"""Streaming recognition: chunk by chunk with carried state gives the offline result of the whole file."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from deepspeech2.core.config import load_config
from deepspeech2.data.shapes import CONV_STACKS, conv_receptive_field
from deepspeech2.inference.streaming import RedecodingRecognizer, StreamingRecognizer, can_stream

STREAM = ["model.conv_channels=4", "model.hidden_size=32", "model.num_layers=2", "model.bidirectional=false",
          "model.lookahead_context=4", "features.normalize=false", "model.rnn_batch_norm=true",
          "model.fc_batch_norm=true", "train.cpu_threads=2"]


def _random_model(*overrides: str):
    """A randomly initialised in-memory model (no checkpoint) behind the inference interface."""
    from deepspeech2.core.device import init_device
    from deepspeech2.data.vocab import build_vocab
    from deepspeech2.inference.acoustic import AcousticModel
    from deepspeech2.model.build import build_network, wrap_network
    from deepspeech2.model.network import count_parameters

    cfg = load_config(None, STREAM + list(overrides))
    init_device("CPU", 0, cfg.train.cpu_threads)
    vocab = build_vocab(cfg)
    net = build_network(cfg, vocab)
    return AcousticModel(wrap_network(net), vocab, cfg.features, "memory", cfg.model, count_parameters(net), net)


def _offline(model, audio):
    from deepspeech2.data.features import compute_features
    from deepspeech2.decoding.decoders import greedy_decode

    feats = compute_features(audio, model.features)
    log_probs, _ = model.forward(feats[None, None], np.array([feats.shape[1]], np.int32))
    return log_probs[0], greedy_decode(log_probs[0], model.vocab.labels, model.vocab.blank).strip()


@pytest.fixture(scope="module")
def clip(speech_clips):
    from deepspeech2.data.audio import load_audio

    return load_audio(speech_clips["canoe"][0], 16000)


def test_receptive_field_of_the_conv_stacks():
    fields = {name: dataclasses.astuple(conv_receptive_field(CONV_STACKS[name])) for name in ("zoo", "zoo_t4", "small_t3")}
    assert fields == {"zoo": (2, 15, 15), "zoo_t4": (4, 15, 15), "small_t3": (3, 4, 4)}   # (stride, left, right)


@pytest.mark.parametrize("stack", ["zoo", "small_t3", "zoo_t4"])
@pytest.mark.parametrize("chunk", [5120, 777])
def test_streaming_equals_offline(clip, stack, chunk):
    model = _random_model(f"model.conv_stack={stack}")
    offline_log_probs, offline_text = _offline(model, clip)
    recognizer = StreamingRecognizer(model)
    partials = [recognizer.accept(clip[b:b + chunk]) for b in range(0, clip.size, chunk)]
    text, words = recognizer.finish()
    streamed = np.concatenate(recognizer._log_probs)
    assert streamed.shape == offline_log_probs.shape
    np.testing.assert_allclose(streamed, offline_log_probs, atol=1e-5)
    assert text == offline_text and text                               # a random model still emits labels
    assert all(text.startswith(p) for p in partials)                   # emitted frames never change
    assert " ".join(w["word"] for w in words) == text
    assert words[-1]["end"] <= clip.size / 16000 + model.frame_seconds


def test_checkpoint_streams_like_offline(tiny_config, tiny_stream_checkpoint, speech_clips):
    from deepspeech2.data.audio import load_audio
    from deepspeech2.inference.acoustic import load_acoustic_model

    model = load_acoustic_model(tiny_stream_checkpoint, tiny_config)
    assert can_stream(model) == ""
    for path, _ in speech_clips.values():
        audio = load_audio(path, model.features.sample_rate)
        recognizer = StreamingRecognizer(model)
        for begin in range(0, audio.size, 5120):
            recognizer.accept(audio[begin:begin + 5120])
        assert recognizer.finish()[0] == _offline(model, audio)[1]


def test_models_that_cannot_stream_redecode(tiny_config, tiny_checkpoint, clip):
    from deepspeech2.inference.acoustic import load_acoustic_model

    model = load_acoustic_model(tiny_checkpoint, tiny_config)
    assert "bidirectional" in can_stream(model)
    with pytest.raises(ValueError, match="bidirectional"):
        StreamingRecognizer(model)
    assert "normalize" in can_stream(_random_model("features.normalize=true"))
    recognizer = RedecodingRecognizer(model, partial_every=0.3)
    for begin in range(0, clip.size, 5120):
        recognizer.accept(clip[begin:begin + 5120])
    assert recognizer.finish()[0] == _offline(model, clip)[1]


def test_transcribe_stream_reports_latency_and_mic_fails_cleanly(tiny_stream_checkpoint, speech_clips):
    clip_path = str(speech_clips["greek"][0])
    cmd = [sys.executable, "-m", "deepspeech2.cli.transcribe", "--model", str(tiny_stream_checkpoint)]
    proc = subprocess.run(cmd + ["--stream", "--pace", "0", "--json", clip_path], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads(proc.stdout)
    assert row["path"] == clip_path and row["chunks"] == int(np.ceil(row["duration"] / 0.32))
    assert 0 < row["latency_ms"]["p50"] <= row["latency_ms"]["max"] and row["rtf"] > 0
    assert "latency mean" in proc.stderr
    mic = subprocess.run(cmd + ["--mic"], capture_output=True, text=True, timeout=600)
    if mic.returncode != 2:
        pytest.skip("this machine has a microphone")
    assert mic.stderr.strip().count("\n") == 0 and mic.stderr.startswith("ds2-transcribe --mic: ")
