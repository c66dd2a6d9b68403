"""The feature cache: a hit for an unchanged file, new features for audio regenerated at the same path."""
from __future__ import annotations

import time

import numpy as np
import soundfile

from deepspeech2.core.config import load_config
from deepspeech2.data.dataset import BatchSource, Utterance
from deepspeech2.data.vocab import build_vocab

RATE = 16000


def _write_tone(path, hz: float) -> None:
    t = np.arange(RATE) / RATE
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), RATE, subtype="PCM_16")


def test_regenerated_audio_at_the_same_path_gets_new_features(tmp_path):
    cfg = load_config(None, [f"data.feature_cache_dir={tmp_path / 'cache'}"])
    wav = tmp_path / "utt.wav"
    _write_tone(wav, 440)
    utt = Utterance("utt", str(wav), "A", 1.0, 101)
    source = BatchSource([utt], [[0]], build_vocab(cfg), cfg)
    first = source._features(utt)
    np.testing.assert_array_equal(source._features(utt), first)          # served from the cache
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 1
    time.sleep(0.05)                                                      # a later write, same size
    _write_tone(wav, 1500)
    regenerated = source._features(utt)
    assert regenerated.shape == first.shape and not np.allclose(regenerated, first)
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 2
