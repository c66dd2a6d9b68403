"""Output vocabulary: characters ↔ label ids, in the zoo's ``labels.json`` order."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from deepspeech2.core.config import Config

__all__ = ["ZOO_LABELS", "BLANK_SYMBOL", "Vocab", "OOVError", "normalize_transcript", "build_vocab"]

BLANK_SYMBOL = "_"
# The zoo's labels.json: apostrophe 0, A-Z 1..26, space 27, blank "_" 28 (last).
ZOO_LABELS: tuple[str, ...] = ("'",) + tuple(chr(c) for c in range(ord("A"), ord("Z") + 1)) + (" ", BLANK_SYMBOL)


class OOVError(ValueError):
    """A transcript holds characters that are not in the vocabulary."""


def normalize_transcript(text: str) -> str:
    """Upper-case, strip, and fold runs of whitespace to one space (LibriSpeech's convention)."""
    return " ".join(text.upper().split())


@dataclass(frozen=True)
class Vocab:
    """Labels with the CTC blank; ``encode`` keeps the apostrophe (id 0), unlike the zoo."""

    labels: tuple[str, ...] = ZOO_LABELS
    blank_symbol: str = BLANK_SYMBOL

    def __post_init__(self) -> None:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels contain duplicates: {self.labels}")
        if self.blank_symbol not in self.labels:
            raise ValueError(f"blank symbol {self.blank_symbol!r} is not among the labels")

    @classmethod
    def from_file(cls, path: str | Path | None) -> "Vocab":
        """Read a JSON list of labels; ``None``/"" gives the zoo's labels."""
        if not path:
            return cls()
        with open(path, encoding="utf-8") as fh:
            labels = json.load(fh)
        if not isinstance(labels, list) or not all(isinstance(x, str) and len(x) == 1 for x in labels):
            raise ValueError(f"{path}: expected a JSON list of single characters")
        return cls(tuple(labels))

    @property
    def blank(self) -> int:
        return self.labels.index(self.blank_symbol)

    @property
    def space(self) -> int:
        return self.labels.index(" ")

    def __len__(self) -> int:
        return len(self.labels)

    def oov_chars(self, text: str) -> set[str]:
        """Characters of ``text`` that cannot be encoded (the blank symbol included)."""
        known = set(self.labels) - {self.blank_symbol}
        return {c for c in text if c not in known}

    def encode(self, text: str) -> list[int]:
        """Label ids of a normalised transcript; raises OOVError on unknown characters."""
        index = {c: i for i, c in enumerate(self.labels) if c != self.blank_symbol}
        try:
            return [index[c] for c in text]
        except KeyError:
            raise OOVError(f"characters {sorted(self.oov_chars(text))} are not in the vocabulary") from None

    def decode(self, ids: Sequence[int]) -> str:
        """Characters of label ids (no CTC collapsing; blanks dropped)."""
        return "".join(self.labels[i] for i in ids if i != self.blank)

    def save(self, path: str | Path) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(list(self.labels), fh)


def build_vocab(cfg: "Config") -> Vocab:
    """The vocabulary named by ``data.labels`` (default: the zoo's 29 labels)."""
    return Vocab.from_file(cfg.data.labels)
