"""Transcription behind ``ds2-transcribe`` (:mod:`deepspeech2.cli.transcribe`): text for any audio soundfile reads.

Audio at any rate and channel count is resampled and downmixed; long files are cut into chunks.
A file that fails (unreadable, empty, not audio, a directory) is reported and the rest still run;
the exit status is 1 if any failed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from deepspeech2.data.audio import AudioError, load_audio
from deepspeech2.data.features import compute_features

__all__ = ["Transcript", "transcribe_file", "transcribe_audio", "word_times", "DEFAULT_CHUNK_SECONDS"]

log = logging.getLogger(__name__)
DEFAULT_CHUNK_SECONDS = 20.0   # long files are decoded in pieces of this length


@dataclass
class Transcript:
    path: str
    text: str = ""
    duration: float = 0.0
    words: list = field(default_factory=list)   # [{"word", "start", "end"}] (greedy decoding only)
    error: str = ""


def word_times(text: str, frames: list[int], seconds_per_frame: float, offset: float) -> list[dict]:
    """Word start/end times from the output frames at which each character was emitted."""
    words, chars, first, last = [], [], 0, 0
    for ch, frame in zip(text + " ", list(frames) + [0]):
        if ch != " ":
            first = frame if not chars else first
            last = frame
            chars.append(ch)
        elif chars:
            words.append({"word": "".join(chars), "start": round(offset + first * seconds_per_frame, 3),
                          "end": round(offset + (last + 1) * seconds_per_frame, 3)})
            chars = []
    return words


def transcribe_audio(audio: np.ndarray, model, decode, chunk_seconds: float,
                     timestamps: bool) -> tuple[str, list[dict]]:
    """Text (and, with ``timestamps``, greedy word times) of (n_samples,) float32 audio at the model's
    rate, decoded in pieces of ``chunk_seconds``; with timestamps the text is greedy too (``decode`` unused)."""
    from deepspeech2.decoding.decoders import greedy_decode_with_frames

    if not chunk_seconds > 0:     # also catches nan: a step of 0 samples would never advance
        raise ValueError(f"chunk_seconds must be a positive number of seconds, got {chunk_seconds}")
    rate = model.features.sample_rate
    step = max(1, int(chunk_seconds * rate))
    pieces, words = [], []
    for begin in range(0, audio.size, step):
        feats = compute_features(audio[begin:begin + step], model.features)
        log_probs, out_lengths = model.forward(feats[None, None], np.array([feats.shape[1]], np.int32))
        if timestamps:
            text, frames = greedy_decode_with_frames(log_probs[0], model.vocab.labels, model.vocab.blank,
                                                     int(out_lengths[0]))
            words += word_times(text, frames, model.frame_seconds, begin / rate)
        else:
            text = decode(log_probs, out_lengths)[0]
        pieces.append(text.strip())
    return " ".join(p for p in pieces if p), words


def transcribe_file(path: str, model, decode, chunk_seconds: float, timestamps: bool) -> Transcript:
    """Transcribe one file with an ``inference.AcousticModel``; errors are returned, not raised."""
    result = Transcript(path)
    try:
        audio = load_audio(path, model.features.sample_rate)
    except AudioError as err:
        result.error = str(err)
        return result
    result.duration = audio.size / model.features.sample_rate
    result.text, result.words = transcribe_audio(audio, model, decode, chunk_seconds, timestamps)
    return result
