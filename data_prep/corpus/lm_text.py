"""The LM training text, as openslr publishes it next to LibriSpeech (resource 11).

openslr's ``librispeech-lm-norm.txt.gz`` holds normalised sentences (upper case, one per line) from
books that are not read in dev or test. The synthetic corpus gets the same: every sentence of the
train-family books (see ``sources``), as transcripts — never the dev or test books. A word n-gram
built from it (``ds2-build-lm --text``) knows far more English than the training transcripts alone.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

from data_prep.corpus.sources import TRAIN, load_family
from data_prep.corpus.text import to_transcript

__all__ = ["LM_TEXT_NAME", "lm_sentences", "write_lm_text"]

LM_TEXT_NAME = "librispeech-lm-norm.txt.gz"   # openslr's file name
GZIP_LEVEL = 9


def lm_sentences() -> list[str]:
    """Every usable sentence of the train-family books, as a transcript, in book order."""
    return [transcript for chapter in load_family(TRAIN) for sentence in chapter.sentences
            if sentence and (transcript := to_transcript(sentence))]


def write_lm_text(out_dir: Path) -> tuple[Path, int]:
    """Write ``out_dir/librispeech-lm-norm.txt.gz`` (byte-identical on every run: gzip mtime 0);
    return its path and the number of sentences."""
    sentences = lm_sentences()
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=GZIP_LEVEL, mtime=0) as gz:
        gz.write(("\n".join(sentences) + "\n").encode("utf-8"))
    path = Path(out_dir) / LM_TEXT_NAME
    tmp = path.with_name(path.name + ".partial")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(path)
    return path, len(sentences)
