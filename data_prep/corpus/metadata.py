"""The text files of a LibriSpeech tree: trans.txt per chapter and the five top-level files."""

from __future__ import annotations

from pathlib import Path

from data_prep.corpus.plan import ChapterPlan, SplitPlan
from data_prep.corpus.sources import SOURCES

__all__ = ["TOP_LEVEL_FILES", "transcript_file", "write_split_text_files"]

TOP_LEVEL_FILES = ("BOOKS.TXT", "CHAPTERS.TXT", "LICENSE.TXT", "README.TXT", "SPEAKERS.TXT")
SECONDS_PER_MINUTE, SECONDS_PER_HOUR = 60.0, 3600.0
NO_PROJECT_ID = 0   # LibriVox project id column: there is no LibriVox recording behind the audio

SPEAKERS_HEADER = """\
; Pipe(|) separated metadata about the synthetic readers of this archive.
;
; The meaning of the fields in left-to-right order is as follows:
;
; reader_id: the ID of the synthetic reader (unique across all subsets)
; gender: 'F' for female, 'M' for male (the sex of the TTS base voice)
; subset: the corpus subset to which the reader's audio is assigned
; duration: total number of minutes of speech by the reader, included in the corpus
; name: the TTS engine, voice and prosody settings that define the reader
;
;ID  |SEX| SUBSET           |MINUTES| NAME
"""
CHAPTERS_HEADER = """\
; Pipe(|) separated metadata about the chapters of this archive.
;
; The meaning of the fields in left-to-right order is as follows:
;
; chapter_id: the ID of the chapter (reader_id * 100 + the reader's chapter number)
; reader_id: the ID of the synthetic reader
; duration: how many minutes of this chapter are used in the corpus
; subset: the corpus subset to which this chapter is assigned
; project_id: always 0 (there is no LibriVox project behind synthetic audio)
; book_id: the Project Gutenberg ID of the book (see BOOKS.TXT)
; chapter_title: the chapter of the book the text comes from
; project_title: the title of the book
;
;ID    |READER|MINUTES| SUBSET           | PROJ.|BOOK ID| CH. TITLE            | PROJECT TITLE
"""
BOOKS_HEADER = """\
; Pipe(|) separated metadata about the texts read in the corpus.
;
; book_id: the Project Gutenberg ID (90001: the Harvard sentences, which have none)
; title, author: of the text
; family: the subsets that read it (train-*, dev-* or test-*: never two families)
;
;ID    |TITLE                         |AUTHOR                        |FAMILY
"""


def transcript_file(chapter: ChapterPlan) -> str:
    """Contents of ``<speaker>-<chapter>.trans.txt``: one ``<utt-id> TRANSCRIPT`` per line."""
    return "".join(f"{u.utt_id} {u.transcript}\n" for u in chapter.utterances)


def _speakers_text(plan: SplitPlan, durations: dict[str, float]) -> str:
    """SPEAKERS.TXT for one split."""
    rows = []
    for speaker in plan.speakers:
        seconds = sum(durations[u.utt_id] for c in plan.chapters if c.speaker == speaker
                      for u in c.utterances)
        rows.append(f"{speaker.speaker_id:<5}| {speaker.sex} | {plan.spec.name:<17}| "
                    f"{seconds / SECONDS_PER_MINUTE:<6.2f}| {speaker.name()}\n")
    return SPEAKERS_HEADER + "".join(rows)


def _chapters_text(plan: SplitPlan, durations: dict[str, float]) -> str:
    """CHAPTERS.TXT for one split."""
    rows = []
    for chapter in plan.chapters:
        minutes = sum(durations[u.utt_id] for u in chapter.utterances) / SECONDS_PER_MINUTE
        rows.append(f"{chapter.chapter_id:<7}| {chapter.speaker.speaker_id:<5}| {minutes:<6.2f}| "
                    f"{plan.spec.name:<17}| {NO_PROJECT_ID:<5}| {chapter.source.book_id:<6}| "
                    f"{chapter.title:<21}| {chapter.source.title}\n")
    return CHAPTERS_HEADER + "".join(rows)


def _books_text() -> str:
    """BOOKS.TXT: every text source, the same in every archive."""
    rows = [f"{s.book_id:<7}| {s.title:<29}| {s.author:<29}| {s.family}\n" for s in SOURCES]
    return BOOKS_HEADER + "".join(rows)


def _readme_text(plan: SplitPlan, durations: dict[str, float]) -> str:
    """README.TXT: what this archive is, and what it is not."""
    hours = sum(durations.values()) / SECONDS_PER_HOUR
    noise = ("Additive white, pink or brown noise at 5-20 dB SNR is mixed into every "
             "utterance of this subset.\n" if plan.spec.noisy else "")
    if plan.spec.heldout:
        noise += ("test-heldout is NOT an official LibriSpeech subset: its readers use only the held-out "
                  "voices (flite awb, espeak-ng en-gb-scotland and en-029), which no other subset uses.\n")
    return f"""\
SYNTHETIC LibriSpeech-format corpus -- subset {plan.spec.name}
{'=' * 70}

This archive is NOT LibriSpeech and contains no human speech.  It was generated offline by
ds2-make-corpus (package data_prep.corpus) with the espeak-ng and flite text-to-speech engines,
laid out exactly like the openslr.org LibriSpeech archives so that the same data-preparation,
training and evaluation code runs on it.

Subset:     {plan.spec.name}
Audio:      {hours:.3f} hours, {len(durations)} utterances, {len(plan.speakers)} readers,
            {len(plan.chapters)} chapters; 16 kHz, mono, 16-bit FLAC
Seed:       {plan.seed} (same seed and size -> byte-identical archive)

Readers are synthetic: one TTS voice with fixed rate, pitch and resampling warp (see
SPEAKERS.TXT).  About half the audio comes from flite (kal16, awb, rms, slt), half from
espeak-ng.  Every recording has random leading/trailing silence, a random peak level and a
faint noise floor.  {noise}
Texts (see BOOKS.TXT): Jane Austen's six novels (public domain) and the Harvard sentences,
normalised like LibriSpeech: upper case, apostrophes, numbers and symbols excluded.  The train,
dev and test subsets read different books; readers are never shared between subsets.

Honest caveats: synthetic voices are far more uniform than LibriVox readers, so word error
rates measured on this corpus are optimistic.  SPEAKERS.TXT and CHAPTERS.TXT describe only
this archive's subset (LibriSpeech's describe all subsets).
"""


def _license_text() -> str:
    """LICENSE.TXT: provenance and licences of every ingredient."""
    return """\
This is a synthetic corpus; it contains no LibriSpeech or LibriVox audio.

Texts:
  * Jane Austen's novels (Emma, Mansfield Park, Pride and Prejudice, Sense and Sensibility,
    Northanger Abbey, Persuasion) are in the public domain; taken from the Debian package
    r-cran-janeaustenr (package code MIT licensed, Copyright 2016-2017 Julia Silge).
  * The Harvard sentences (IEEE Recommended Practice for Speech Quality Measurements, 1969),
    taken from the Debian package r-cran-stringr (MIT licensed).
Speech engines (their output is generated data, not a copy of the programs):
  * espeak-ng (GPL-3.0-or-later).
  * flite, CMU Flite (BSD-style licence), voices kal16, awb, rms, slt.
The generator's own code is part of the course-lab repository that produced this archive.
"""


def write_split_text_files(plan: SplitPlan, durations: dict[str, float], root: Path) -> None:
    """Write the trans.txt files and the five top-level files under ``root/LibriSpeech``."""
    top = root / "LibriSpeech"
    for chapter in plan.chapters:
        folder = top / plan.spec.name / str(chapter.speaker.speaker_id) / str(chapter.chapter_id)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{chapter.speaker.speaker_id}-{chapter.chapter_id}.trans.txt"
        (folder / name).write_text(transcript_file(chapter), encoding="utf-8")
    contents = {
        "BOOKS.TXT": _books_text(),
        "CHAPTERS.TXT": _chapters_text(plan, durations),
        "LICENSE.TXT": _license_text(),
        "README.TXT": _readme_text(plan, durations),
        "SPEAKERS.TXT": _speakers_text(plan, durations),
    }
    for name in TOP_LEVEL_FILES:
        (top / name).write_text(contents[name], encoding="utf-8")
