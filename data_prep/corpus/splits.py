"""The seven LibriSpeech split names, plus ``test-heldout``, and how the synthesiser treats each.

``test-heldout`` is NOT an official LibriSpeech name: clean audio of test-family text read only by
held-out voices (see ``voices``), which no other split uses; ``ds2-prepare-librispeech`` turns it
into ``test_heldout``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from dataclasses import dataclass

from data_prep.corpus.sources import DEV, TEST, TRAIN

__all__ = ["SPLITS", "SPLIT_NAMES", "SplitSpec", "parse_split_arg", "text_start"]


@dataclass(frozen=True)
class SplitSpec:
    """Fixed properties of one official split name."""

    name: str
    slot: int                # position in SPLIT_NAMES: seeds RNG streams, partitions voices
    family: str              # text family: TRAIN, DEV or TEST (disjoint books)
    noisy: bool              # "*-other": additive coloured noise at a low SNR
    first_speaker_id: int    # speaker ids of this split are first_speaker_id + k
    max_speakers: int        # id range reserved for the split
    minutes_per_speaker: float  # LibriSpeech: ~25 min per train reader, ~8 min dev/test
    minutes_per_chapter: float  # target length of one speaker-chapter
    heldout: bool = False    # read only by the held-out voices (which no other split uses)


TRAIN_MINUTES_PER_SPEAKER, EVAL_MINUTES_PER_SPEAKER = 25.0, 8.0
TRAIN_MINUTES_PER_CHAPTER, EVAL_MINUTES_PER_CHAPTER = 12.0, 4.0

SPLITS: dict[str, SplitSpec] = {
    spec.name: spec for spec in (
        SplitSpec("train-clean-100", 0, TRAIN, False, 100, 1000,
                  TRAIN_MINUTES_PER_SPEAKER, TRAIN_MINUTES_PER_CHAPTER),
        SplitSpec("train-clean-360", 1, TRAIN, False, 1100, 2000,
                  TRAIN_MINUTES_PER_SPEAKER, TRAIN_MINUTES_PER_CHAPTER),
        SplitSpec("train-other-500", 2, TRAIN, True, 3100, 3000,
                  TRAIN_MINUTES_PER_SPEAKER, TRAIN_MINUTES_PER_CHAPTER),
        SplitSpec("dev-clean", 3, DEV, False, 6100, 700,
                  EVAL_MINUTES_PER_SPEAKER, EVAL_MINUTES_PER_CHAPTER),
        SplitSpec("dev-other", 4, DEV, True, 6800, 700,
                  EVAL_MINUTES_PER_SPEAKER, EVAL_MINUTES_PER_CHAPTER),
        SplitSpec("test-clean", 5, TEST, False, 7500, 700,
                  EVAL_MINUTES_PER_SPEAKER, EVAL_MINUTES_PER_CHAPTER),
        SplitSpec("test-other", 6, TEST, True, 8200, 700,
                  EVAL_MINUTES_PER_SPEAKER, EVAL_MINUTES_PER_CHAPTER),
        SplitSpec("test-heldout", 7, TEST, False, 8900, 700,
                  EVAL_MINUTES_PER_SPEAKER, EVAL_MINUTES_PER_CHAPTER, heldout=True),
    )
}
SPLIT_NAMES: tuple[str, ...] = tuple(SPLITS)


def text_start(spec: SplitSpec) -> Fraction:
    """Where in its family's chapter list (a fraction) a split starts reading.

    The regular splits of a family share the list evenly (test-clean 0, test-other 1/2); a held-out
    split starts halfway between the first two, so it reads other text than test-clean.
    """
    members = [name for name, other in SPLITS.items() if other.family == spec.family and not other.heldout]
    if spec.heldout:
        return Fraction(1, 2 * len(members))
    return Fraction(members.index(spec.name), len(members))


def parse_split_arg(text: str) -> tuple[str, float]:
    """Parse ``NAME:HOURS`` (e.g. ``dev-clean:0.2``); raise ValueError naming the valid splits."""
    name, sep, hours_text = text.partition(":")
    valid = ", ".join(SPLIT_NAMES)
    if not sep or name not in SPLITS:
        raise ValueError(f"bad split {text!r}: expected NAME:HOURS with NAME one of {valid}")
    try:
        hours = float(hours_text)
    except ValueError:
        raise ValueError(f"bad split {text!r}: HOURS must be a number, e.g. {name}:0.5") from None
    if not (math.isfinite(hours) and hours > 0):
        raise ValueError(f"bad split {text!r}: HOURS must be a positive number")
    return name, hours
