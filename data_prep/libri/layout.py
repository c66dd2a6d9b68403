"""What a LibriSpeech preparation produces: split names, output paths and per-utterance records."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

__all__ = ["SPLIT_GROUPS", "OUTPUT_OF", "NOT_DOWNLOADABLE", "FILTERED", "SAMPLE_RATE", "PROBLEMS", "STATE_DIR",
           "EXTRACT_DIR", "PreparationError", "Task", "Result", "wav_path", "txt_path"]

# Output split -> the LibriSpeech parts it merges (deepspeech.pytorch's grouping). "test-heldout" is
# NOT an official LibriSpeech part: ds2-make-corpus writes it (voices no other split uses); it is
# prepared when present or asked for, and never downloaded.
SPLIT_GROUPS: dict[str, tuple[str, ...]] = {
    "train": ("train-clean-100", "train-clean-360", "train-other-500"),
    "val": ("dev-clean", "dev-other"),
    "test_clean": ("test-clean",),
    "test_other": ("test-other",),
    "test_heldout": ("test-heldout",),
}
OUTPUT_OF = {part: out for out, parts in SPLIT_GROUPS.items() for part in parts}
NOT_DOWNLOADABLE = frozenset({"test-heldout"})
FILTERED = ("train",)  # only training data is kept to the duration limits; eval keeps everything
SAMPLE_RATE = 16000
# Reasons an utterance is skipped as bad input (--strict fails on any of them).
PROBLEMS = ("corrupt_audio", "empty_audio", "missing_transcript", "missing_audio",
            "empty_transcript", "oov_transcript", "duplicate_utterance")
STATE_DIR, EXTRACT_DIR = ".prep_state", ".extract"


class PreparationError(RuntimeError):
    """Preparation failed, or (``strict``) some input was skipped; ``summary`` holds the numbers."""

    def __init__(self, message: str, summary: dict | None = None):
        super().__init__(message)
        self.summary = summary


class Task(NamedTuple):
    """One utterance to convert; ``size``/``crc32`` describe its wav from an earlier run (0: none)."""

    utt: str
    flac: str
    transcript: str
    wav: str
    txt: str
    size: int = 0
    crc32: int = 0


@dataclass
class Result:
    """What became of one utterance; an "ok" result records its wav's size and CRC-32 so that a
    re-run can check the output instead of trusting that it exists."""

    utt: str
    out_split: str
    status: str            # "ok" or one of PROBLEMS
    duration: float = 0.0  # seconds (ok results)
    converted: bool = False
    file: str = ""
    detail: str = ""
    size: int = 0          # bytes of the written wav (ok results)
    crc32: int = 0         # CRC-32 of the written wav (ok results)


def wav_path(target: Path, out_split: str, utt: str) -> Path:
    return target / out_split / "wav" / f"{utt}.wav"


def txt_path(target: Path, out_split: str, utt: str) -> Path:
    return target / out_split / "txt" / f"{utt}.txt"
