"""Pure signal functions that turn raw TTS output into LibriSpeech-like 16 kHz recordings.

Signals are float arrays of shape (T,) in [-1, 1] unless stated otherwise.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

from deepspeech2.data.noise import NOISE_COLOURS, coloured_noise, db_to_amplitude, noise_rms

__all__ = [
    "NOISE_COLOURS",
    "SAMPLE_RATE",
    "RenderSettings",
    "coloured_noise",
    "encode_flac",
    "finish_recording",
    "resample",
    "trim_silence",
]

SAMPLE_RATE = 16_000
RESAMPLE_QUALITY = "HQ"
TRIM_THRESHOLD = 1e-3                 # |x| below this at the ends counts as TTS silence
LEAD_SILENCE_RANGE = (0.15, 0.6)      # seconds of silence added before the speech
TRAIL_SILENCE_RANGE = (0.15, 0.7)     # ... and after it
MEAN_PADDING_SECONDS = (sum(LEAD_SILENCE_RANGE) + sum(TRAIL_SILENCE_RANGE)) / 2
PEAK_RANGE = (0.25, 0.9)              # final peak amplitude (about -12 to -1 dBFS)
NOISE_FLOOR_DBFS_RANGE = (-75.0, -60.0)  # RMS of the faint floor every recording gets
OTHER_SNR_DB_RANGE = (5.0, 20.0)      # "*-other" splits: speech-to-noise ratio
INT16_MAX = 32767                       # float [-1, 1] → int16 samples when writing audio


@dataclass(frozen=True)
class RenderSettings:
    """Random per-utterance choices, drawn from the utterance's own RNG stream."""

    lead_seconds: float
    trail_seconds: float
    peak: float
    floor_dbfs: float
    floor_colour: str
    snr_db: float | None       # None: clean recording
    noise_colour: str

    @classmethod
    def draw(cls, rng: np.random.Generator, noisy: bool) -> RenderSettings:
        """Draw settings; ``noisy`` adds coloured noise at an SNR in OTHER_SNR_DB_RANGE."""
        colours = list(NOISE_COLOURS)
        return cls(
            lead_seconds=float(rng.uniform(*LEAD_SILENCE_RANGE)),
            trail_seconds=float(rng.uniform(*TRAIL_SILENCE_RANGE)),
            peak=float(rng.uniform(*PEAK_RANGE)),
            floor_dbfs=float(rng.uniform(*NOISE_FLOOR_DBFS_RANGE)),
            floor_colour=colours[int(rng.integers(len(colours)))],
            snr_db=float(rng.uniform(*OTHER_SNR_DB_RANGE)) if noisy else None,
            noise_colour=colours[int(rng.integers(len(colours)))],
        )


def resample(signal: np.ndarray, rate: int, warp: float = 1.0) -> np.ndarray:
    """Resample (T,) at ``rate`` to SAMPLE_RATE, treating it as recorded at ``rate * warp``.

    A warp above 1 makes the voice higher and faster (like a tape played fast).
    """
    source_rate = rate * warp
    if source_rate == SAMPLE_RATE:
        return signal.astype(np.float64)
    return soxr.resample(signal.astype(np.float64), source_rate, SAMPLE_RATE, RESAMPLE_QUALITY)


def trim_silence(signal: np.ndarray, threshold: float = TRIM_THRESHOLD) -> np.ndarray:
    """Drop the leading and trailing samples whose magnitude stays below ``threshold``."""
    loud = np.flatnonzero(np.abs(signal) >= threshold)
    if loud.size == 0:
        raise ValueError("the synthesised signal is silent")
    return signal[loud[0]:loud[-1] + 1]


def finish_recording(speech: np.ndarray, settings: RenderSettings,
                     rng: np.random.Generator) -> np.ndarray:
    """Pad, add noise and level a trimmed 16 kHz speech signal; return int16 samples (T',)."""
    speech = speech / np.max(np.abs(speech))
    lead = round(settings.lead_seconds * SAMPLE_RATE)
    trail = round(settings.trail_seconds * SAMPLE_RATE)
    mix = np.concatenate([np.zeros(lead), speech, np.zeros(trail)])
    if settings.snr_db is not None:
        mix += noise_rms(speech, settings.snr_db) * coloured_noise(mix.size, settings.noise_colour, rng)
    mix *= settings.peak / np.max(np.abs(mix))
    floor = db_to_amplitude(settings.floor_dbfs)
    mix += floor * coloured_noise(mix.size, settings.floor_colour, rng)
    return np.round(np.clip(mix, -1.0, 1.0) * INT16_MAX).astype(np.int16)


def encode_flac(samples: np.ndarray) -> bytes:
    """FLAC bytes (16 kHz, mono, 16-bit) of int16 samples (T,); deterministic for equal input."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()
