"""Acoustic features, pure numpy/scipy: the zoo's log spectrogram or a log mel filterbank.

``audio (n_samples,) float32 in [-1, 1]`` → ``(num_freq_bins(cfg), T)`` float32 with
``n_fft // 2 + 1`` bins (spectrogram) or ``n_mels`` bands (fbank) and ``T = 1 + n_samples // hop``
(centred frames). :func:`compute_features` picks the kind named by ``cfg.type``.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft
import scipy.signal

from deepspeech2.core.config import FeatureConfig

__all__ = ["n_fft", "hop_length", "num_freq_bins", "num_frames", "spectrogram", "fbank", "compute_features",
           "get_window", "vtlp_frequencies"]

NORM_EPS = 1e-8      # guards the std of a constant (silent) spectrogram
VTLP_BOUNDARY = 0.6  # VTLP warps frequencies linearly up to this fraction of Nyquist (4.8 kHz at 16 kHz), then
                     # bends so that Nyquist stays Nyquist (Jaitly & Hinton 2013)
FBANK_FLOOR = 1e-6   # keeps log() finite on digital silence (mel power of [-1, 1]-scaled audio)


def n_fft(cfg: FeatureConfig) -> int:
    """FFT size = window length in samples (320 at 16 kHz / 20 ms)."""
    return int(round(cfg.sample_rate * cfg.window_size))


def hop_length(cfg: FeatureConfig) -> int:
    """Frame shift in samples (160 at 16 kHz / 10 ms)."""
    return int(round(cfg.sample_rate * cfg.window_stride))


def num_freq_bins(cfg: FeatureConfig) -> int:
    """Feature dimension fed to the model (161 for the zoo's settings, n_mels for fbank)."""
    if cfg.type == "fbank":
        return cfg.n_mels
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


def vtlp_frequencies(freqs: np.ndarray, warp: float, nyquist: float) -> np.ndarray:
    """Where VTLP moves each frequency: ``warp × f`` up to a boundary, then the straight line that keeps
    Nyquist fixed, so the warped axis stays inside [0, nyquist] and monotonic."""
    boundary = VTLP_BOUNDARY * nyquist * min(warp, 1.0) / warp
    upper = nyquist - (nyquist - warp * boundary) * (nyquist - freqs) / (nyquist - boundary)
    return np.where(freqs <= boundary, warp * freqs, upper)


@lru_cache(maxsize=128)
def _mel_filters(sample_rate: int, nfft: int, n_mels: int, warp: float = 1.0) -> np.ndarray:
    """(n_mels, nfft // 2 + 1) Slaney-normalised mel filterbank (librosa's default); with ``warp`` ≠ 1 each
    FFT bin contributes to the bands of its VTLP-warped frequency (a speaker with a scaled vocal tract)."""
    import librosa  # imported lazily: slow to import, needed only for fbank features

    filters = librosa.filters.mel(sr=sample_rate, n_fft=nfft, n_mels=n_mels).astype(np.float32)
    if warp == 1.0:
        return filters
    freqs = np.linspace(0.0, sample_rate / 2, filters.shape[1])
    warped = vtlp_frequencies(freqs, warp, sample_rate / 2)
    return np.stack([np.interp(warped, freqs, band) for band in filters]).astype(np.float32)


def get_window(cfg: FeatureConfig) -> np.ndarray:
    """The periodic analysis window of length n_fft (a copy)."""
    return _window(cfg.window, n_fft(cfg)).copy()


def _stft(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """(T, n_fft // 2 + 1) complex64 STFT with centred, zero-padded frames. Single precision: numpy's FFT
    works in double, which cost the data workers half their time for nothing the float32 features keep.
    What follows (mel projection, logarithm) stays in double, as before: numpy and OpenBLAS pick SIMD
    kernels by CPU, and single-precision results of those differ in the last bit between CPUs, which
    would end the runs' bit-for-bit reproducibility across machines."""
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio of shape (n_samples,), got {audio.shape}")
    if audio.size == 0:
        raise ValueError("cannot compute features of empty audio")
    nfft, hop = n_fft(cfg), hop_length(cfg)
    padded = np.pad(audio.astype(np.float32), nfft // 2, mode="constant")
    n_frames = 1 + (padded.size - nfft) // hop
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(n_frames, nfft), strides=(padded.strides[0] * hop, padded.strides[0]))
    return scipy.fft.rfft(frames * _window(cfg.window, nfft), axis=1)


def spectrogram(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """The zoo's features: ``log1p(|STFT|)``, optionally mean/std normalised over the whole utterance.

    Args:
        audio: (n_samples,) float waveform at ``cfg.sample_rate``.
    Returns:
        (n_freq, T) float32, equal to ``log1p(abs(librosa.stft(audio, n_fft, hop, win,
        window, center=True, pad_mode="constant")))`` before normalisation.
    """
    feats = np.log1p(np.abs(_stft(audio, cfg)).astype(np.float64)).T
    if cfg.normalize:
        feats = (feats - feats.mean()) / (feats.std() + NORM_EPS)
    return np.ascontiguousarray(feats, dtype=np.float32)


def fbank(audio: np.ndarray, cfg: FeatureConfig, warp: float = 1.0) -> np.ndarray:
    """Log mel filterbank energies ``log(mel @ |STFT|² + FBANK_FLOOR)``, (n_mels, T) float32;
    with ``normalize`` each band is mean/std normalised over the utterance (per-utterance CMVN).
    ``warp`` ≠ 1: vocal tract length perturbation (:func:`vtlp_frequencies`)."""
    spectrum = _stft(audio, cfg)
    power = (spectrum.real ** 2 + spectrum.imag ** 2).astype(np.float64)   # |X|², no square root
    mel = power @ _mel_filters(cfg.sample_rate, n_fft(cfg), cfg.n_mels, float(warp)).T
    feats = np.log(mel + FBANK_FLOOR).T
    if cfg.normalize:
        feats = (feats - feats.mean(1, keepdims=True)) / (feats.std(1, keepdims=True) + NORM_EPS)
    return np.ascontiguousarray(feats, dtype=np.float32)


def compute_features(audio: np.ndarray, cfg: FeatureConfig, warp: float = 1.0) -> np.ndarray:
    """The model's input features of ``audio`` as ``cfg.type`` says: (num_freq_bins(cfg), T); ``warp``
    (VTLP) only for fbank."""
    if cfg.type == "fbank":
        return fbank(audio, cfg, warp)
    if warp != 1.0:
        raise ValueError(f"VTLP (warp {warp}) needs features.type=fbank, got {cfg.type!r}")
    return spectrogram(audio, cfg)
