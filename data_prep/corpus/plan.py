"""Plan a split before any audio is made: speakers, their chapters, and every utterance's text.

The plan depends only on (split name, hours, seed) and the committed text, never on other
splits or on the number of worker processes, so each split is reproducible on its own.
Each split starts at its own offset in its family's chapter list (so splits of one family read
different text unless their sizes add up to more than the family's books), and cycles
through the books again when asked for more hours than the text holds.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from data_prep.corpus.audio import MEAN_PADDING_SECONDS
from data_prep.corpus.sources import Chapter, TextSource
from data_prep.corpus.splits import SplitSpec, text_start
from data_prep.corpus.text import next_utterance, to_transcript
from data_prep.corpus.voices import Speaker, sample_speakers

__all__ = ["ChapterPlan", "SplitPlan", "UtterancePlan", "plan_split", "seed_sequence", "speech_bounds"]

SECONDS_PER_HOUR, SECONDS_PER_MINUTE = 3600.0, 60.0
MIN_SPEAKERS = 2                      # at least one flite and one espeak-ng reader
MAX_CHAPTERS_PER_SPEAKER = 99         # chapter id = speaker id * 100 + chapter number
CHAPTER_ID_FACTOR = 100
UTTERANCE_SECONDS_RANGE = (5.0, 17.0)  # target speech length, drawn per utterance
MAX_UTTERANCE_SPEECH_SECONDS = 24.0   # longest planned speech (+ up to ~2 s of silence)
MIN_PLANNED_SPEECH_SECONDS = 2.0      # the lowest bound ``max_seconds`` may set on planned speech
MIN_UTTERANCE_WORDS = 2
SPEAKER_STREAM, TEXT_STREAM = 1, 2    # RNG sub-streams of a split


@dataclass(frozen=True)
class UtterancePlan:
    """One utterance to synthesise."""

    utt_id: str          # "<speaker>-<chapter>-NNNN"
    index: int           # position in the split: names the utterance's RNG stream
    speaker: Speaker
    tts_text: str
    transcript: str
    est_seconds: float


@dataclass
class ChapterPlan:
    """One speaker-chapter: a contiguous stretch of one book chapter read by one speaker."""

    chapter_id: int
    speaker: Speaker
    source: TextSource
    title: str
    utterances: list[UtterancePlan]


@dataclass
class SplitPlan:
    """Everything needed to synthesise one split."""

    spec: SplitSpec
    hours: float
    seed: int
    speakers: list[Speaker]
    chapters: list[ChapterPlan]

    def utterances(self) -> list[UtterancePlan]:
        """All utterances, in file-name order."""
        return [u for chapter in self.chapters for u in chapter.utterances]


def seed_sequence(seed: int, spec: SplitSpec, *stream: int) -> np.random.SeedSequence:
    """The RNG seed of one stream of one split: independent of other splits and job count."""
    return np.random.SeedSequence([seed, spec.slot, *stream])


class _TextCursor:
    """Walks a family's chapters sentence by sentence, wrapping around at the end."""

    def __init__(self, chapters: list[Chapter], start_chapter: int) -> None:
        if not any(s for chapter in chapters for s in chapter.sentences):
            raise ValueError("the text family has no sentences")
        self.chapters = chapters
        self.chapter = start_chapter % len(chapters)
        self.sentence = 0

    def current(self) -> Chapter:
        """The book chapter being read."""
        return self.chapters[self.chapter]

    def take(self, target_words: float, max_words: float) -> list[str]:
        """The next utterance's sentences, or [] at the end of the current chapter."""
        sentences = self.current().sentences
        taken, self.sentence = next_utterance(sentences, self.sentence, target_words, max_words)
        return taken

    def next_chapter(self) -> None:
        """Move to the start of the next book chapter (wrapping around)."""
        self.chapter = (self.chapter + 1) % len(self.chapters)
        self.sentence = 0


def _speaker_count(spec: SplitSpec, hours: float) -> int:
    """Number of readers for ``hours`` of audio, LibriSpeech-like minutes per reader."""
    wanted = round(hours * SECONDS_PER_HOUR / (spec.minutes_per_speaker * SECONDS_PER_MINUTE))
    return min(spec.max_speakers, max(MIN_SPEAKERS, wanted))


def _speaker_budgets(speakers: list[Speaker], hours: float) -> list[float]:
    """Seconds of audio per speaker: each engine gets an equal share, split among its voices."""
    per_engine = Counter(speaker.engine for speaker in speakers)
    engine_seconds = hours * SECONDS_PER_HOUR / len(per_engine)
    return [engine_seconds / per_engine[speaker.engine] for speaker in speakers]


def speech_bounds(max_seconds: float | None) -> tuple[tuple[float, float], float]:
    """(range the target speech length is drawn from, longest planned speech), in seconds, for
    utterances of at most ``max_seconds`` estimated (speech + mean silence; None: no bound)."""
    if max_seconds is None:
        return UTTERANCE_SECONDS_RANGE, MAX_UTTERANCE_SPEECH_SECONDS
    if not math.isfinite(max_seconds):
        raise ValueError(f"the longest utterance must be a finite number of seconds, got {max_seconds}")
    longest = min(MAX_UTTERANCE_SPEECH_SECONDS, max_seconds - MEAN_PADDING_SECONDS)
    if longest < MIN_PLANNED_SPEECH_SECONDS:
        raise ValueError(f"utterances of at most {max_seconds} s leave less than "
                         f"{MIN_PLANNED_SPEECH_SECONDS} s of speech after the silence around it")
    low, high = UTTERANCE_SECONDS_RANGE
    return (min(low, longest), min(high, longest)), longest


def _plan_chapter(cursor: _TextCursor, rng: np.random.Generator, speaker: Speaker,
                  chapter_id: int, budget: float, first_index: int,
                  max_seconds: float | None) -> ChapterPlan:
    """Fill one speaker-chapter with utterances from the cursor, up to ``budget`` seconds."""
    seconds_per_word = speaker.seconds_per_word()
    target_range, longest = speech_bounds(max_seconds)
    max_words = longest / seconds_per_word
    chapter = ChapterPlan(chapter_id, speaker, cursor.current().source, cursor.current().title,
                          [])
    planned, empty_chapters = 0.0, 0
    while planned < budget:
        target_words = rng.uniform(*target_range) / seconds_per_word
        sentences = cursor.take(target_words, max_words)
        if not sentences:
            cursor.next_chapter()
            if chapter.utterances:
                break
            empty_chapters += 1
            if empty_chapters > len(cursor.chapters):
                raise ValueError(f"no sentence of at most {max_words:.0f} words in the text")
            chapter.source, chapter.title = cursor.current().source, cursor.current().title
            continue
        tts_text = " ".join(sentences)
        transcript = to_transcript(tts_text)
        if len(transcript.split()) < MIN_UTTERANCE_WORDS:
            continue
        est = len(transcript.split()) * seconds_per_word + MEAN_PADDING_SECONDS
        number = len(chapter.utterances)
        chapter.utterances.append(UtterancePlan(
            f"{speaker.speaker_id}-{chapter_id}-{number:04d}", first_index + number, speaker,
            tts_text, transcript, est))
        planned += est
    return chapter


def plan_split(spec: SplitSpec, hours: float, seed: int, chapters: list[Chapter],
               max_seconds: float | None = None) -> SplitPlan:
    """Plan ``hours`` of audio for split ``spec`` reading the family's ``chapters``; with
    ``max_seconds``, no utterance is planned longer than that (estimated speech + mean silence)."""
    if hours <= 0:
        raise ValueError(f"hours must be positive, got {hours}")
    count = _speaker_count(spec, hours)
    speakers = sample_speakers(np.random.default_rng(seed_sequence(seed, spec, SPEAKER_STREAM)),
                               spec.first_speaker_id, count, spec.slot, heldout=spec.heldout)
    rng = np.random.default_rng(seed_sequence(seed, spec, TEXT_STREAM))
    cursor = _TextCursor(chapters, int(len(chapters) * text_start(spec)))
    chapter_budget = spec.minutes_per_chapter * SECONDS_PER_MINUTE
    plan = SplitPlan(spec, hours, seed, speakers, [])
    index = 0
    for speaker, remaining in zip(speakers, _speaker_budgets(speakers, hours)):
        number = 0
        while remaining > 0:
            number += 1
            if number > MAX_CHAPTERS_PER_SPEAKER:
                raise ValueError(f"{spec.name}: {hours} h needs more than "
                                 f"{MAX_CHAPTERS_PER_SPEAKER} chapters per speaker")
            chapter = _plan_chapter(cursor, rng, speaker,
                                    speaker.speaker_id * CHAPTER_ID_FACTOR + number,
                                    min(remaining, chapter_budget), index, max_seconds)
            index += len(chapter.utterances)
            remaining -= sum(u.est_seconds for u in chapter.utterances)
            plan.chapters.append(chapter)
    return plan
