"""One utterance: verify an earlier output against its record, or convert flac → 16 kHz/16-bit mono wav.

Runs in worker processes; everything here is a pure function of the task and the files it names.
"""
from __future__ import annotations

import io
import os
import zlib
from pathlib import Path

import numpy as np
import soundfile

from data_prep.libri.layout import SAMPLE_RATE, Task
from deepspeech2.core.files import atomic_write_bytes, atomic_write_text
from deepspeech2.data.audio import AudioError, load_audio

__all__ = ["file_crc32", "verified_duration", "convert"]

_CRC_CHUNK = 1 << 20
_INT16_PEAK = 32767.0


def file_crc32(path: str | Path) -> int:
    """CRC-32 of a file's bytes (fast enough to re-check every output on each run)."""
    crc = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CRC_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return crc


def verified_duration(wav: Path, txt: Path, transcript: str, size: int, crc32: int) -> float | None:
    """Duration of an existing output pair that matches its record (wav size and CRC-32, transcript,
    format), or None when it must be (re)written: a missing, truncated or altered file is never trusted."""
    if size <= 0:
        return None
    try:
        if txt.read_text(encoding="utf-8") != transcript or wav.stat().st_size != size:
            return None
        if file_crc32(wav) != crc32:
            return None
        info = soundfile.info(str(wav))
    except (OSError, RuntimeError, UnicodeDecodeError):
        return None
    ok = info.samplerate == SAMPLE_RATE and info.channels == 1 and info.subtype == "PCM_16" and info.frames > 0
    return info.frames / SAMPLE_RATE if ok else None


def _decode_int16(flac: str) -> np.ndarray:
    """(n,) int16 mono 16 kHz samples of ``flac``; raises AudioError / ValueError("empty")."""
    if os.path.getsize(flac) == 0:
        raise ValueError("file is empty (0 bytes)")
    try:
        info = soundfile.info(flac)
        data, rate = soundfile.read(flac, dtype="int16", always_2d=True)
    except Exception as err:  # soundfile raises LibsndfileError / RuntimeError on bad data
        raise AudioError(f"cannot decode ({err})") from None
    if data.shape[0] == 0:
        raise ValueError("audio has no samples")
    if 0 < info.frames < 1 << 62 and data.shape[0] != info.frames:  # FLAC may leave the count unknown
        raise AudioError(f"truncated: {data.shape[0]} of {info.frames} samples decoded")
    if rate == SAMPLE_RATE and data.shape[1] == 1:
        return data[:, 0]
    audio = load_audio(flac, SAMPLE_RATE)  # downmix + resample; int16 / 32767 scaling
    return np.clip(np.round(audio * _INT16_PEAK), -32768, 32767).astype(np.int16)


def convert(task: Task) -> tuple[str, float, bool, str, int, int]:
    """Convert one utterance unless its recorded output is intact.

    Returns (status, duration, converted, detail, wav size, wav CRC-32).
    """
    wav, txt = Path(task.wav), Path(task.txt)
    duration = verified_duration(wav, txt, task.transcript, task.size, task.crc32)
    if duration is not None:
        return "ok", duration, False, "", task.size, task.crc32
    try:
        samples = _decode_int16(task.flac)
    except AudioError as err:
        return "corrupt_audio", 0.0, False, str(err), 0, 0
    except ValueError as err:
        return "empty_audio", 0.0, False, str(err), 0, 0
    encoded = io.BytesIO()  # encoded in memory: a failed write is an OSError naming the file (e.g. ENOSPC)
    soundfile.write(encoded, samples, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    data = encoded.getvalue()
    atomic_write_bytes(wav, data, sync=False)  # a torn wav is caught by its record's size and CRC-32
    atomic_write_text(txt, task.transcript)
    return "ok", len(samples) / SAMPLE_RATE, True, "", len(data), zlib.crc32(data)
