"""The committed text sources: which book feeds which split family, and their file format.

Each source is one gzip file ``data/<key>.txt.gz`` of UTF-8 lines::

    # <book title>
    ## <chapter title>
    <one cleaned sentence (TTS text) per line>
    <an empty line marks a dropped sentence: utterances never merge across it>

Train, dev and test draw on disjoint books, so no sentence is heard in two split families.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DATA_DIR",
    "FAMILY_SOURCES",
    "SOURCES",
    "Chapter",
    "TextSource",
    "load_family",
    "load_source",
    "write_source",
]

DATA_DIR = Path(__file__).resolve().parent / "data"
BOOK_PREFIX = "# "
CHAPTER_PREFIX = "## "
GZIP_LEVEL = 9
TRAIN, DEV, TEST = "train", "dev", "test"


@dataclass(frozen=True)
class TextSource:
    """One book (or sentence collection) and the split family it is reserved for."""

    key: str          # file stem under DATA_DIR, also the R object name in janeaustenr
    title: str
    author: str
    book_id: int      # Project Gutenberg id where one exists, like LibriSpeech's BOOK ID
    family: str       # TRAIN, DEV or TEST


@dataclass
class Chapter:
    """A chapter of a source: its title and sentences (None = dropped sentence, a gap)."""

    source: TextSource
    title: str
    sentences: list[str | None] = field(default_factory=list)


HARVARD_BOOK_ID = 90001  # no Gutenberg id: a number outside Gutenberg's range in use
SOURCES: tuple[TextSource, ...] = (
    TextSource("emma", "Emma", "Jane Austen", 158, TRAIN),
    TextSource("mansfieldpark", "Mansfield Park", "Jane Austen", 141, TRAIN),
    TextSource("prideprejudice", "Pride and Prejudice", "Jane Austen", 1342, TRAIN),
    TextSource("sensesensibility", "Sense and Sensibility", "Jane Austen", 161, TRAIN),
    TextSource("harvard", "Harvard Sentences", "IEEE (1969)", HARVARD_BOOK_ID, TRAIN),
    TextSource("northangerabbey", "Northanger Abbey", "Jane Austen", 121, DEV),
    TextSource("persuasion", "Persuasion", "Jane Austen", 105, TEST),
)
FAMILY_SOURCES: dict[str, tuple[TextSource, ...]] = {
    family: tuple(source for source in SOURCES if source.family == family)
    for family in (TRAIN, DEV, TEST)
}


def source_path(source: TextSource, data_dir: Path = DATA_DIR) -> Path:
    """Path of the committed sentence file of ``source``."""
    return data_dir / f"{source.key}.txt.gz"


def write_source(source: TextSource, chapters: list[Chapter], data_dir: Path = DATA_DIR) -> Path:
    """Write ``chapters`` in the committed format, byte-reproducibly (gzip mtime 0, no name)."""
    lines = [BOOK_PREFIX + source.title]
    for chapter in chapters:
        lines.append(CHAPTER_PREFIX + chapter.title)
        lines.extend(sentence or "" for sentence in chapter.sentences)
    payload = ("\n".join(lines) + "\n").encode("utf-8")
    path = source_path(source, data_dir)
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=GZIP_LEVEL,
                       mtime=0) as stream:
        stream.write(payload)
    path.write_bytes(buffer.getvalue())
    return path


def load_source(source: TextSource, data_dir: Path = DATA_DIR) -> list[Chapter]:
    """Read the chapters of one committed source file."""
    path = source_path(source, data_dir)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run tools/build_corpus_text.py")
    chapters: list[Chapter] = []
    for line in gzip.decompress(path.read_bytes()).decode("utf-8").splitlines():
        if line.startswith(CHAPTER_PREFIX):
            chapters.append(Chapter(source, line[len(CHAPTER_PREFIX):]))
        elif line.startswith(BOOK_PREFIX):
            continue
        elif chapters:
            chapters[-1].sentences.append(line or None)
        else:
            raise ValueError(f"{path}: sentence before the first chapter heading")
    return chapters


def load_family(family: str, data_dir: Path = DATA_DIR) -> list[Chapter]:
    """All chapters of the sources reserved for ``family``, in a fixed order."""
    if family not in FAMILY_SOURCES:
        raise ValueError(f"unknown split family {family!r}; expected one of "
                         f"{sorted(FAMILY_SOURCES)}")
    return [chapter for source in FAMILY_SOURCES[family]
            for chapter in load_source(source, data_dir)]
