"""Log-magnitude spectrogram features (the zoo's recipe), pure numpy/scipy.

``audio (n_samples,) float32 in [-1, 1]`` → ``(n_freq, T)`` float32 with
``n_freq = n_fft // 2 + 1`` and ``T = 1 + n_samples // hop`` (centred frames).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.signal

from deepspeech2.core.config import FeatureConfig

__all__ = ["n_fft", "hop_length", "num_freq_bins", "num_frames", "spectrogram", "get_window"]

NORM_EPS = 1e-8  # guards the std of a constant (silent) spectrogram


def n_fft(cfg: FeatureConfig) -> int:
    """FFT size = window length in samples (320 at 16 kHz / 20 ms)."""
    return int(round(cfg.sample_rate * cfg.window_size))


def hop_length(cfg: FeatureConfig) -> int:
    """Frame shift in samples (160 at 16 kHz / 10 ms)."""
    return int(round(cfg.sample_rate * cfg.window_stride))


def num_freq_bins(cfg: FeatureConfig) -> int:
    """Feature dimension fed to the model (161 for the zoo's settings)."""
    return n_fft(cfg) // 2 + 1


def num_frames(n_samples: int, cfg: FeatureConfig) -> int:
    """Spectrogram frames of ``n_samples`` of audio with centred framing."""
    return 1 + n_samples // hop_length(cfg)


@lru_cache(maxsize=8)
def _window(name: str, length: int) -> np.ndarray:
    try:
        return scipy.signal.get_window(name, length, fftbins=True).astype(np.float32)
    except ValueError as err:
        raise ValueError(f"unknown window {name!r} ({err}); try hamming, hann, blackman") from None


def get_window(cfg: FeatureConfig) -> np.ndarray:
    """The periodic analysis window of length n_fft (a copy)."""
    return _window(cfg.window, n_fft(cfg)).copy()


def spectrogram(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """``log1p(|STFT|)`` of mono audio, optionally mean/std normalised per utterance.

    Args:
        audio: (n_samples,) float waveform at ``cfg.sample_rate``.
    Returns:
        (n_freq, T) float32, equal to ``log1p(abs(librosa.stft(audio, n_fft, hop, win,
        window, center=True, pad_mode="constant")))`` before normalisation.
    """
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio of shape (n_samples,), got {audio.shape}")
    if audio.size == 0:
        raise ValueError("cannot compute a spectrogram of empty audio")
    nfft, hop = n_fft(cfg), hop_length(cfg)
    padded = np.pad(audio.astype(np.float32), nfft // 2, mode="constant")
    n_frames = 1 + (padded.size - nfft) // hop
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(n_frames, nfft), strides=(padded.strides[0] * hop, padded.strides[0]))
    spec = np.abs(np.fft.rfft(frames * _window(cfg.window, nfft), axis=1)).T   # (n_freq, T)
    feats = np.log1p(spec).astype(np.float32)
    if cfg.normalize:
        feats = (feats - feats.mean()) / (feats.std() + NORM_EPS)
    return np.ascontiguousarray(feats, dtype=np.float32)
