"""``ds2-transcribe --model CKPT|MINDIR FILE...``: text for any audio soundfile reads.

Audio at any rate and channel count is resampled and downmixed; long files are cut into chunks.
A file that fails (unreadable, empty, not audio, a directory) is reported and the rest still run;
the exit status is 1 if any failed.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass, field

import numpy as np

from deepspeech2.audio import AudioError, load_audio
from deepspeech2.features import spectrogram

__all__ = ["Transcript", "transcribe_file", "main", "DEFAULT_CHUNK_SECONDS"]

log = logging.getLogger(__name__)
DEFAULT_CHUNK_SECONDS = 20.0   # long files are decoded in pieces of this length


@dataclass
class Transcript:
    path: str
    text: str = ""
    duration: float = 0.0
    words: list = field(default_factory=list)   # [{"word", "start", "end"}] (greedy decoding only)
    error: str = ""


def _word_times(text: str, frames: list[int], seconds_per_frame: float, offset: float) -> list[dict]:
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


def transcribe_file(path: str, model, decode, chunk_seconds: float, timestamps: bool) -> Transcript:
    """Transcribe one file with an ``inference.AcousticModel``; errors are returned, not raised."""
    from deepspeech2.decoder import greedy_decode_with_frames

    result = Transcript(path)
    try:
        audio = load_audio(path, model.features.sample_rate)
    except AudioError as err:
        result.error = str(err)
        return result
    rate = model.features.sample_rate
    result.duration = audio.size / rate
    step = max(1, int(chunk_seconds * rate))
    pieces, words = [], []
    for begin in range(0, audio.size, step):
        chunk = audio[begin:begin + step]
        feats = spectrogram(chunk, model.features)
        log_probs, out_lengths = model.forward(feats[None, None], np.array([feats.shape[1]], np.int32))
        if timestamps:
            text, frames = greedy_decode_with_frames(log_probs[0], model.vocab.labels, model.vocab.blank,
                                                     int(out_lengths[0]))
            words += _word_times(text, frames, chunk.size / rate / max(int(out_lengths[0]), 1), begin / rate)
        else:
            text = decode(log_probs, out_lengths)[0]
        pieces.append(text.strip())
    result.text = " ".join(p for p in pieces if p)
    result.words = words
    return result


def main(argv: list[str] | None = None) -> int:
    from deepspeech2.cli import parse_run_args
    from deepspeech2.evaluate import build_decoder
    from deepspeech2.inference import load_acoustic_model
    from deepspeech2.logging_utils import setup_logging

    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--model", required=True, help="checkpoint (.ckpt) or exported MINDIR (.mindir)")
    extra.add_argument("--json", action="store_true", help="one JSON object per file (text, duration, words)")
    extra.add_argument("--chunk_seconds", type=float, default=DEFAULT_CHUNK_SECONDS)
    extra.add_argument("files", nargs="+", help="audio files (wav, flac, ogg, ...)")
    flags = {"device_target": "train.device_target", "decoder": "eval.decoder", "lm_path": "eval.lm_path",
             "beam_width": "eval.beam_width"}
    cfg, args = parse_run_args(argv, "ds2-transcribe", "Transcribe audio files.", flags, extra=extra,
                               positional_overrides=False)
    setup_logging()
    try:
        model = load_acoustic_model(args.model, cfg)
    except (ValueError, OSError) as err:
        log.error("%s", err)
        return 1
    decode = build_decoder(cfg.eval, model.vocab)
    failed = 0
    for path in args.files:
        result = transcribe_file(path, model, decode, args.chunk_seconds,
                                 timestamps=args.json and cfg.eval.decoder == "greedy")
        if result.error:
            failed += 1
            log.error("%s", result.error)
        if args.json:
            print(json.dumps(result.__dict__), flush=True)
        elif not result.error:
            print(f"{path}\t{result.text}", flush=True)
    if failed:
        log.error("%d of %d files failed", failed, len(args.files))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
