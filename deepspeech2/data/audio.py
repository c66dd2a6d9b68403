"""Audio loading: any format soundfile reads, downmixed to mono, resampled, int16-scaled like the zoo."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

__all__ = ["AudioError", "load_audio", "audio_duration", "ZOO_INT16_RESCALE"]

# The zoo divides int16 samples by 32767, soundfile's float read by 32768: multiply by this to match the zoo.
ZOO_INT16_RESCALE = 32768.0 / 32767.0


class AudioError(ValueError):
    """An audio file is missing, unreadable, empty or not audio."""


def audio_duration(path: str | Path) -> float:
    """Duration in seconds from the file header (no decoding)."""
    try:
        info = soundfile.info(str(path))
    except Exception as err:  # soundfile raises LibsndfileError / RuntimeError / OSError
        raise AudioError(f"{path}: cannot read audio header ({err})") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError(f"{path}: audio has no samples")
    return info.frames / info.samplerate


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Decode ``path`` to (n_samples,) float32 mono at ``sample_rate``.

    16-bit PCM comes out as int16 / 32767 (the zoo's scaling), so features match zoo checkpoints.
    Raises AudioError naming the file on any failure.
    """
    path = Path(path)
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    if not path.exists():
        raise AudioError(f"{path}: file does not exist")
    try:
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:
        raise AudioError(f"{path}: cannot decode audio ({err}); is it a valid wav/flac/ogg file?") from None
    if audio.shape[0] == 0:
        raise AudioError(f"{path}: audio has no samples")
    mono = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    mono = mono * np.float32(ZOO_INT16_RESCALE)
    if rate != sample_rate:
        import librosa  # imported lazily: it is slow to import and rarely needed

        mono = librosa.resample(mono, orig_sr=rate, target_sr=sample_rate, res_type="soxr_hq")
    if not np.all(np.isfinite(mono)):
        raise AudioError(f"{path}: audio contains NaN or infinite samples")
    return np.ascontiguousarray(mono, dtype=np.float32)
