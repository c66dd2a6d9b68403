"""Coloured noise (white, pink, brown): one generator for the corpus maker's noisy splits and for
training-time noise augmentation."""
from __future__ import annotations

import numpy as np
import scipy.fft

__all__ = ["ACTIVE_SPEECH_THRESHOLD", "NOISE_COLOURS", "coloured_noise", "speech_rms", "noise_rms", "db_to_amplitude"]

NOISE_COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}  # spectral slope a: power ~ 1/f^a
ACTIVE_SPEECH_THRESHOLD = 0.02  # of the peak magnitude: samples counted as speech for an SNR
DB_PER_AMPLITUDE_DECADE = 20.0  # a level in dB is 20 log10 of an amplitude ratio


def coloured_noise(length: int, colour: str, rng: np.random.Generator, single: bool = False) -> np.ndarray:
    """Unit-RMS, zero-mean noise of shape (length,) whose power spectrum falls as 1/f^a.

    The spectrum is shaped at the next FFT-friendly length and the first ``length`` samples are kept: an
    FFT of a length with a large prime factor takes 10-50x longer (it was half of the corpus maker's time).
    ``single`` (training-time augmentation): float32 throughout; the default (the corpus maker) float64 with
    numpy's FFT, the same bytes on every CPU. The two give different samples for the same generator.
    """
    if colour not in NOISE_COLOURS:
        raise ValueError(f"unknown noise colour {colour!r}; expected one of {list(NOISE_COLOURS)}")
    size = scipy.fft.next_fast_len(length, real=True) if length > 0 else length
    dtype = np.float32 if single else np.float64
    fft = scipy.fft if single else np.fft                  # scipy.fft keeps float32; numpy's computes in double
    spectrum = fft.rfft(rng.standard_normal(size, dtype=dtype))
    frequencies = np.fft.rfftfreq(size)
    frequencies[0] = frequencies[1] if size > 1 else 1.0   # no infinite DC gain
    # the power law in double: the same bits on every CPU (numpy's float32 power picks SIMD kernels by CPU)
    spectrum *= (frequencies ** (-NOISE_COLOURS[colour] / 2)).astype(dtype)
    noise = fft.irfft(spectrum, n=size)[:length]
    noise -= noise.mean()
    rms = np.sqrt(np.mean(noise ** 2))
    return noise / rms if rms > 0 else noise


def speech_rms(signal: np.ndarray, threshold: float = ACTIVE_SPEECH_THRESHOLD) -> float:
    """RMS of the active speech in ``signal`` (T,): the samples whose magnitude is at least ``threshold``
    times the peak, so leading/trailing silence and pauses do not lower the level an SNR refers to.
    0.0 for a silent signal."""
    magnitude = np.abs(signal)
    peak = float(magnitude.max()) if signal.size else 0.0
    if peak <= 0:
        return 0.0
    active = signal[magnitude >= threshold * peak].astype(np.float64)
    return float(np.sqrt(np.mean(active ** 2)))


def noise_rms(speech: np.ndarray, snr_db: float) -> float:
    """The noise RMS that puts ``speech`` (T,) at ``snr_db`` dB SNR against its active speech (0.0 if silent)."""
    return speech_rms(speech) / db_to_amplitude(snr_db)


def db_to_amplitude(decibels: float) -> float:
    """Amplitude ratio of a level in dB."""
    return float(10 ** (decibels / DB_PER_AMPLITUDE_DECADE))
