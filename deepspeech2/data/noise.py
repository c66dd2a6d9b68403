"""Coloured noise (white, pink, brown): one generator for the corpus maker's noisy splits and for
training-time noise augmentation."""
from __future__ import annotations

import numpy as np

__all__ = ["NOISE_COLOURS", "coloured_noise"]

NOISE_COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}  # spectral slope a: power ~ 1/f^a


def coloured_noise(length: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS, zero-mean noise of shape (length,) whose power spectrum falls as 1/f^a."""
    if colour not in NOISE_COLOURS:
        raise ValueError(f"unknown noise colour {colour!r}; expected one of {list(NOISE_COLOURS)}")
    spectrum = np.fft.rfft(rng.standard_normal(length))
    frequencies = np.fft.rfftfreq(length)
    frequencies[0] = frequencies[1] if length > 1 else 1.0   # no infinite DC gain
    spectrum *= frequencies ** (-NOISE_COLOURS[colour] / 2)
    noise = np.fft.irfft(spectrum, n=length)
    noise -= noise.mean()
    rms = np.sqrt(np.mean(noise ** 2))
    return noise / rms if rms > 0 else noise
