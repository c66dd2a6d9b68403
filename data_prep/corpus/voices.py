"""Synthetic speakers: an engine voice plus rate, pitch and resampling-warp settings.

A *speaker* is one fixed combination of those settings; every utterance of a speaker uses it.
Warp values are quantised and partitioned by split (``warp step % SPLIT_COUNT == split slot``),
so no two splits can ever share a speaker, even when generated independently.

Held-out voices: the flite voice ``awb`` and the espeak-ng accents ``en-gb-scotland`` and ``en-029``
are read only by held-out splits (``test-heldout``) and never by train/dev/test, so that split
measures recognition of voices never heard in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ESPEAK", "FLITE", "HELDOUT_FLITE_VOICES", "HELDOUT_ESPEAK_ACCENTS", "Speaker", "sample_speakers"]

FLITE, ESPEAK = "flite", "espeak-ng"
ENGINE_PACKAGES = {FLITE: "flite", ESPEAK: "espeak-ng"}


@dataclass(frozen=True)
class FliteVoice:
    """A flite voice, its sex, speaking rate and settable mean-F0 range (None: not settable)."""

    name: str
    sex: str
    seconds_per_word: float           # measured on Austen prose at duration_stretch 1.0
    f0_range: tuple[int, int] | None


# Measured: kal16 ~90 Hz, awb ~120 Hz, slt ~165 Hz by default; rms ignores the F0 target.
FLITE_VOICES: tuple[FliteVoice, ...] = (
    FliteVoice("kal16", "M", 0.323, (85, 125)),
    FliteVoice("awb", "M", 0.314, (100, 145)),
    FliteVoice("rms", "M", 0.343, None),
    FliteVoice("slt", "F", 0.311, (150, 210)),
)
FLITE_STRETCH_RANGE = (0.85, 1.2)

ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
                  "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
ESPEAK_MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "klatt", "klatt2",
                        "klatt3", "klatt4", "edward", "john", "david", "max", "robert", "rob",
                        "adam", "Alex", "Andy", "paul")
ESPEAK_FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5", "linda", "Annie", "Alicia", "belinda",
                          "aunty", "Andrea", "steph")
ESPEAK_DEFAULT_RATE_WPM = 175
ESPEAK_SECONDS_PER_WORD = 0.289      # measured at the default rate
ESPEAK_RATE_RANGE = (140, 195)       # words per minute (-s)
ESPEAK_PITCH_RANGE = (25, 75)        # 0-99 (-p)
FEMALE_SHARE = 0.5                   # espeak-ng speakers drawn with female variants

WARP_RANGE = (0.92, 1.08)
WARP_STEP = 0.001
HELDOUT_FLITE_VOICES = frozenset({"awb"})
HELDOUT_ESPEAK_ACCENTS = frozenset({"en-gb-scotland", "en-029"})

SPLIT_COUNT = 8                      # the seven official LibriSpeech split names + test-heldout
STRETCH_DECIMALS = 2
WARP_DECIMALS = 3
MAX_SAMPLING_TRIES = 1000


@dataclass(frozen=True)
class Speaker:
    """One synthetic reader.  ``rate`` is wpm (espeak-ng) or duration stretch (flite);
    ``pitch`` is 0-99 (espeak-ng) or mean F0 in Hz (flite; 0 = voice default)."""

    speaker_id: int
    engine: str
    voice: str
    sex: str
    rate: float
    pitch: int
    warp: float

    def key(self) -> tuple[str, str, float, int, float]:
        """The settings that define the voice, without the id."""
        return (self.engine, self.voice, self.rate, self.pitch, self.warp)

    def name(self) -> str:
        """Human-readable description used as the NAME column of SPEAKERS.TXT."""
        if self.engine == FLITE:
            pitch = f" f0 {self.pitch} Hz" if self.pitch else ""
            return f"flite {self.voice} stretch {self.rate:.2f}{pitch} warp {self.warp:.3f}"
        return (f"espeak-ng {self.voice} {self.rate:.0f} wpm pitch {self.pitch} "
                f"warp {self.warp:.3f}")

    def is_heldout_voice(self) -> bool:
        """True when the engine voice (flite voice, espeak-ng accent) is reserved for held-out splits."""
        if self.engine == FLITE:
            return self.voice in HELDOUT_FLITE_VOICES
        return self.voice.split("+")[0] in HELDOUT_ESPEAK_ACCENTS

    def seconds_per_word(self) -> float:
        """Estimated speaking time per word, used to plan utterance and chapter lengths."""
        if self.engine == FLITE:
            base = next(v.seconds_per_word for v in FLITE_VOICES if v.name == self.voice)
            return base * self.rate / self.warp
        return ESPEAK_SECONDS_PER_WORD * ESPEAK_DEFAULT_RATE_WPM / self.rate / self.warp


def _sample_warp(rng: np.random.Generator, split_slot: int) -> float:
    """A warp factor whose quantisation step is congruent to ``split_slot`` mod SPLIT_COUNT."""
    steps = round((WARP_RANGE[1] - WARP_RANGE[0]) / WARP_STEP)
    candidates = np.arange(split_slot, steps + 1, SPLIT_COUNT)
    return round(WARP_RANGE[0] + int(rng.choice(candidates)) * WARP_STEP, WARP_DECIMALS)


def _sample_flite(rng: np.random.Generator, speaker_id: int, warp: float, heldout: bool) -> Speaker:
    """A random flite speaker, from the held-out voices or from the others."""
    voices = [v for v in FLITE_VOICES if (v.name in HELDOUT_FLITE_VOICES) == heldout]
    voice = voices[int(rng.integers(len(voices)))]
    stretch = round(float(rng.uniform(*FLITE_STRETCH_RANGE)), STRETCH_DECIMALS)
    pitch = int(rng.integers(voice.f0_range[0], voice.f0_range[1] + 1)) if voice.f0_range else 0
    return Speaker(speaker_id, FLITE, voice.name, voice.sex, stretch, pitch, warp)


def _sample_espeak(rng: np.random.Generator, speaker_id: int, warp: float, heldout: bool) -> Speaker:
    """A random espeak-ng speaker (accent + voice variant), from the held-out accents or the others."""
    accents = [a for a in ESPEAK_ACCENTS if (a in HELDOUT_ESPEAK_ACCENTS) == heldout]
    accent = accents[int(rng.integers(len(accents)))]
    sex = "F" if rng.random() < FEMALE_SHARE else "M"
    variants = ESPEAK_FEMALE_VARIANTS if sex == "F" else ESPEAK_MALE_VARIANTS
    variant = variants[int(rng.integers(len(variants)))]
    rate = float(rng.integers(ESPEAK_RATE_RANGE[0], ESPEAK_RATE_RANGE[1] + 1))
    pitch = int(rng.integers(ESPEAK_PITCH_RANGE[0], ESPEAK_PITCH_RANGE[1] + 1))
    return Speaker(speaker_id, ESPEAK, f"{accent}+{variant}", sex, rate, pitch, warp)


def sample_speakers(rng: np.random.Generator, first_id: int, count: int,
                    split_slot: int, heldout: bool = False) -> list[Speaker]:
    """``count`` distinct speakers with consecutive ids; engines alternate flite / espeak-ng.

    Alternating engines with equal per-speaker budgets gives about half the audio from each.
    ``heldout``: only the held-out voices; otherwise never them.
    """
    if not 0 <= split_slot < SPLIT_COUNT:
        raise ValueError(f"split_slot must be in [0, {SPLIT_COUNT}), got {split_slot}")
    speakers: list[Speaker] = []
    seen: set[tuple[str, str, float, int, float]] = set()
    for index in range(count):
        sampler = _sample_flite if index % 2 == 0 else _sample_espeak
        for _ in range(MAX_SAMPLING_TRIES):
            speaker = sampler(rng, first_id + index, _sample_warp(rng, split_slot), heldout)
            if speaker.key() not in seen:
                break
        else:
            raise RuntimeError("could not sample a new distinct speaker; too many requested")
        seen.add(speaker.key())
        speakers.append(speaker)
    return speakers
