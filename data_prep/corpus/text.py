"""Text normalisation for the synthetic corpus: LibriSpeech-style transcripts from book prose.

Two renderings of each sentence are kept: a *TTS text* (mixed case, with commas and sentence
punctuation so the engines phrase it naturally) and a *transcript* derived from it (upper-case
letters, internal apostrophes and single spaces, like LibriSpeech's ``trans.txt``).
"""

from __future__ import annotations

import re

__all__ = [
    "ABBREVIATIONS",
    "TRANSCRIPT_PATTERN",
    "clean_paragraph",
    "clean_sentence",
    "next_utterance",
    "paragraph_sentences",
    "to_transcript",
    "word_count",
]

# Abbreviations expanded before sentence splitting (LibriSpeech spells these out), with or without
# their period: some editions (the test family's *Persuasion*) write "Mrs Smith", "Mr Elliot".
ABBREVIATIONS: dict[str, str] = {
    "Mr": "Mister",
    "Mrs": "Missus",
    "Dr": "Doctor",
    "St": "Saint",
    "Esq": "Esquire",
}
ABBREVIATION_RE = re.compile(r"\b(" + "|".join(ABBREVIATIONS) + r")\b\.?")
# A lone capital followed by a period ("W. Elliot") is an initial; "I" and "A" are words.
INITIAL_RE = re.compile(r"\b([B-HJ-Z])\.")
# Marks a sentence for rejection: any character outside the TTS alphabet does.
REJECT_MARK = "#"
ITALIC_MARK = "_"
DASH_RE = re.compile(r"-{2,}")
HYPHEN = "-"
SENTENCE_BREAK_RE = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]*[A-Z])")
CLAUSE_PUNCT_RE = re.compile(r"[;:()\[\]]")
QUOTE_RE = re.compile(r"\"")
STRAY_APOSTROPHE_RE = re.compile(r"(?<![A-Za-z])'|'(?![A-Za-z])")
SPACE_BEFORE_PUNCT_RE = re.compile(r"\s+([,.!?])")
MISSING_SPACE_RE = re.compile(r"([,.!?])(?=[A-Za-z])")
CLAUSE_BREAK_RE = re.compile(r"(?<=[,;:])\s+")
REPEATED_PUNCT_RE = re.compile(r"([,.!?])(?:\s*[,.!?])+")
MULTI_SPACE_RE = re.compile(r"\s+")
TTS_ALLOWED_RE = re.compile(r"^[A-Za-z' ,.!?]+$")
SENTENCE_END = (".", "!", "?")
LEADING_PUNCT = " ,.!?'"
# Transcript alphabet check, exactly as the data-prep code validates LibriSpeech.
TRANSCRIPT_PATTERN = re.compile(r"^[A-Z' ]+$")
NON_TRANSCRIPT_RE = re.compile(r"[^A-Z' ]")
MIN_ALL_CAPS_LETTERS = 2
SINGLE_LETTER_WORDS = frozenset({"a", "A", "I", "O"})
MAX_SENTENCE_WORDS = 40


def word_count(text: str) -> int:
    """Number of whitespace-separated words in ``text``."""
    return len(text.split())


def to_transcript(tts_text: str) -> str:
    """Transcript for a TTS text: upper case, punctuation dropped, single spaces.

    >>> to_transcript("Well, Mister Knightley, it's late!")
    "WELL MISTER KNIGHTLEY IT'S LATE"
    """
    upper = NON_TRANSCRIPT_RE.sub(" ", tts_text.upper())
    return MULTI_SPACE_RE.sub(" ", upper).strip()


def _normalise_marks(paragraph: str) -> str:
    """Expand abbreviations, flag initials and strip typographic marks (idempotent)."""
    text = paragraph.replace(ITALIC_MARK, "")
    text = ABBREVIATION_RE.sub(lambda match: ABBREVIATIONS[match.group(1)], text)
    text = INITIAL_RE.sub(lambda match: match.group(1) + REJECT_MARK, text)
    text = DASH_RE.sub(", ", text)
    return text.replace(HYPHEN, " ")


def paragraph_sentences(paragraph: str) -> list[str]:
    """Split one paragraph of prose into raw sentences (abbreviations already expanded)."""
    text = MULTI_SPACE_RE.sub(" ", _normalise_marks(paragraph)).strip()
    return [piece for piece in SENTENCE_BREAK_RE.split(text) if piece.strip()]


def _has_suspect_token(text: str) -> bool:
    """True for an all-caps word (headings, acronyms, shouting) or a stray single letter
    (initials, censored oaths such as "d--d" or "G--")."""
    for token in text.split():
        letters = "".join(char for char in token if char.isalpha())
        if len(letters) >= MIN_ALL_CAPS_LETTERS and letters.isupper():
            return True
        if len(letters) == 1 and letters not in SINGLE_LETTER_WORDS:
            return True
    return False


def _strongest_punctuation(match: re.Match[str]) -> str:
    """Collapse a run like ``,.`` or ``!,`` to its first sentence-final mark, else a comma."""
    finals = [char for char in match.group(0) if char in SENTENCE_END]
    return finals[0] if finals else ","


def clean_sentence(raw: str, max_words: int = MAX_SENTENCE_WORDS) -> str | None:
    """TTS text for one raw sentence, or None when it must be dropped.

    Dropped: digits, symbols, non-ASCII letters, all-caps words, stray single letters, and
    empty or over-long sentences.
    Kept punctuation: commas (clauses, dashes, semicolons and brackets become commas) and the
    final ``.``/``!``/``?``.
    """
    text = QUOTE_RE.sub("", _normalise_marks(raw))
    text = CLAUSE_PUNCT_RE.sub(",", text)
    text = STRAY_APOSTROPHE_RE.sub("", text)
    text = MULTI_SPACE_RE.sub(" ", text)
    text = SPACE_BEFORE_PUNCT_RE.sub(r"\1", text)
    text = MISSING_SPACE_RE.sub(r"\1 ", text)
    text = REPEATED_PUNCT_RE.sub(_strongest_punctuation, text)
    text = text.strip().lstrip(LEADING_PUNCT).rstrip(", ")
    if not text or not TTS_ALLOWED_RE.match(text) or _has_suspect_token(text):
        return None
    if not to_transcript(text) or word_count(text) > max_words:
        return None
    return text if text.endswith(SENTENCE_END) else text + "."


def split_long_sentence(raw: str, max_words: int = MAX_SENTENCE_WORDS) -> list[str]:
    """Cut a sentence longer than ``max_words`` at clause punctuation into pieces that fit.

    Long LibriSpeech segments are cut at pauses too; a clause that alone exceeds
    ``max_words`` stays over-long (and is dropped by :func:`clean_sentence`).
    """
    if word_count(raw) <= max_words:
        return [raw]
    pieces: list[str] = []
    current: list[str] = []
    for clause in CLAUSE_BREAK_RE.split(raw):
        if current and word_count(" ".join(current + [clause])) > max_words:
            pieces.append(" ".join(current))
            current = []
        current.append(clause)
    pieces.append(" ".join(current))
    return pieces


def clean_paragraph(paragraph: str) -> list[str | None]:
    """Cleaned sentences of a paragraph; None stands for a dropped sentence (a gap)."""
    return [clean_sentence(piece) for raw in paragraph_sentences(paragraph)
            for piece in split_long_sentence(raw)]


def next_utterance(sentences: list[str | None], start: int, target_words: float,
                   max_words: float) -> tuple[list[str], int]:
    """Take consecutive sentences from ``start`` until about ``target_words`` words.

    Returns the sentences taken and the index after them.  Leading gaps (None) and sentences
    longer than ``max_words`` are skipped; taking stops at a gap, at the target, before a
    sentence that would overshoot the target by more than stopping undershoots it, or before
    one that would push the total over ``max_words``.  An empty list means the end.
    """
    index = start
    while index < len(sentences) and (sentences[index] is None
                                      or word_count(sentences[index]) > max_words):
        index += 1
    taken: list[str] = []
    count = 0
    while index < len(sentences):
        sentence = sentences[index]
        if sentence is None:
            break
        words = word_count(sentence)
        overshoot, undershoot = count + words - target_words, target_words - count
        if count + words > max_words or (taken and overshoot > undershoot):
            break
        taken.append(sentence)
        count += words
        index += 1
        if count >= target_words:
            break
    return taken, index
