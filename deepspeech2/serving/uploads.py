"""Checks on what clients send (uploads and WebSocket PCM frames); each failure names the problem and
carries the HTTP status to answer with."""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from deepspeech2.data.audio import ZOO_INT16_RESCALE, AudioError, audio_duration, load_audio

__all__ = ["Limits", "BadInput", "check_content_type", "decode_upload", "pcm16_to_float", "AUDIO_SUFFIXES"]

MB = 1 << 20
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3")
# Content types a browser or curl sends for audio files besides audio/*.
OTHER_AUDIO_TYPES = ("application/octet-stream", "application/ogg", "video/ogg")
PCM_SCALE = np.float32(ZOO_INT16_RESCALE / 32768.0)   # int16 → float as load_audio scales 16-bit files


@dataclass(frozen=True)
class Limits:
    """What the server accepts (``ds2-serve`` flags)."""
    max_upload_bytes: int = 50 * MB        # uploaded file size
    max_audio_seconds: float = 600.0       # uploaded or streamed audio duration
    max_pending: int = 64                  # requests waiting for the model worker; more get 503
    max_frame_bytes: int = 1 * MB          # one WebSocket PCM frame (≈ 32 s at 16 kHz)


class BadInput(ValueError):
    """A client error: ``status`` (4xx) and a message naming the problem."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def check_content_type(content_type: str, filename: str) -> None:
    """Reject uploads whose declared type is not audio (an empty type is judged by the decoder)."""
    ctype = content_type.split(";")[0].strip().lower()
    if ctype and not ctype.startswith("audio/") and ctype not in OTHER_AUDIO_TYPES:
        raise BadInput(415, f"{filename}: content type {ctype!r} is not audio; upload wav, flac, ogg or mp3 "
                            "(audio/* or application/octet-stream)")


def decode_upload(stream: BinaryIO, filename: str, sample_rate: int, limits: Limits) -> np.ndarray:
    """Copy an uploaded file to a temporary file and load it as ``ds2-transcribe`` loads files:
    (n_samples,) float32 mono at ``sample_rate``. Raises BadInput (empty, too big, too long, not audio)."""
    suffix = Path(filename).suffix.lower()
    with tempfile.TemporaryDirectory(prefix="ds2-upload-") as tmp:
        path = Path(tmp) / f"upload{suffix if suffix in AUDIO_SUFFIXES else ''}"
        with open(path, "wb") as out:
            shutil.copyfileobj(stream, out, 1 * MB)
        size = path.stat().st_size
        if size == 0:
            raise BadInput(400, f"{filename}: the uploaded file is empty")
        if size > limits.max_upload_bytes:
            raise BadInput(413, f"{filename}: {size / MB:.1f} MB is over the upload limit of "
                                f"{limits.max_upload_bytes / MB:.1f} MB")
        try:
            seconds = audio_duration(path)
            if seconds > limits.max_audio_seconds:
                raise BadInput(413, f"{filename}: {seconds:.1f} s of audio is over the limit of "
                                    f"{limits.max_audio_seconds:.1f} s")
            return load_audio(path, sample_rate)
        except AudioError as err:
            raise BadInput(422, str(err).replace(str(path), filename)) from None


def pcm16_to_float(frame: bytes, limits: Limits) -> np.ndarray:
    """One WebSocket binary frame of little-endian int16 mono PCM → float32 samples."""
    if not frame:
        raise BadInput(400, "empty audio frame")
    if len(frame) > limits.max_frame_bytes:
        raise BadInput(413, f"audio frame of {len(frame)} bytes is over the limit of {limits.max_frame_bytes}")
    if len(frame) % 2:
        raise BadInput(400, f"audio frame of {len(frame)} bytes is not 16-bit PCM (odd byte count)")
    return np.frombuffer(frame, dtype="<i2").astype(np.float32) * PCM_SCALE
