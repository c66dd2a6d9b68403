#!/usr/bin/env python3
"""Regenerate data_prep/corpus/data/*.txt.gz from Debian's r-cran-janeaustenr and r-cran-stringr.

One-off maintenance script (the output is committed, so ``ds2-make-corpus`` needs no network):

    python tools/build_corpus_text.py            # downloads the two .deb files with apt-get
    python tools/build_corpus_text.py --deb-dir D  # uses D/r-cran-*.deb already downloaded

R is not needed: the packages' lazy-load data bases are decoded by data_prep.corpus.rdata.
The output is byte-reproducible (gzip mtime 0).
"""

from __future__ import annotations

import argparse
import logging
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from data_prep.corpus.rdata import read_lazyload_db  # noqa: E402
from data_prep.corpus.sources import (  # noqa: E402
    DATA_DIR, DEV, SOURCES, TEST, TRAIN, Chapter, TextSource, write_source)
from data_prep.corpus.text import clean_paragraph, clean_sentence, to_transcript  # noqa: E402

LOGGER = logging.getLogger("build_corpus_text")
DEBIAN_PACKAGES = ("r-cran-janeaustenr", "r-cran-stringr")
R_LIBRARY = Path("usr/lib/R/site-library")
HARVARD_KEY = "harvard"
FAMILY_ORDER = (TRAIN, DEV, TEST)   # a sentence is kept in the first family that has it
HARVARD_R_OBJECT = "sentences"
HARVARD_LIST_SIZE = 10  # the 720 sentences come as 72 phonetically balanced lists of ten
CHAPTER_HEADING_RE = re.compile(r"^\s*chapter\s+([ivxlc]+|\d+)\.?\s*$", re.IGNORECASE)
VOLUME_HEADING_RE = re.compile(r"^\s*volume\s+([ivxlc]+|\d+)\.?\s*$", re.IGNORECASE)


def fetch_packages(work_dir: Path, deb_dir: Path | None) -> dict[str, Path]:
    """Download (unless ``deb_dir`` is given) and unpack the Debian packages; return R libs."""
    libraries: dict[str, Path] = {}
    for package in DEBIAN_PACKAGES:
        if deb_dir is None:
            subprocess.run(["apt-get", "download", package], cwd=work_dir, check=True)
            debs = sorted(work_dir.glob(f"{package}_*.deb"))
        else:
            debs = sorted(deb_dir.glob(f"{package}_*.deb"))
        if not debs:
            raise FileNotFoundError(f"no {package}_*.deb found")
        unpack_dir = work_dir / package
        subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(unpack_dir)], check=True)
        LOGGER.info("unpacked %s", debs[-1].name)
        r_name = package.removeprefix("r-cran-")
        libraries[r_name] = unpack_dir / R_LIBRARY / r_name / "data"
    return libraries


def novel_chapters(source: TextSource, lines: list[str | None]) -> list[Chapter]:
    """Split a novel's text lines into chapters of cleaned sentences.

    Paragraphs are blank-line separated; the front matter before the first chapter heading
    and volume headings are skipped.  A dropped sentence is kept as None (a merge barrier).
    """
    chapters: list[Chapter] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph and chapters:
            chapters[-1].sentences.extend(clean_paragraph(" ".join(paragraph)))
        paragraph.clear()

    for line in lines:
        text = (line or "").strip()
        heading = CHAPTER_HEADING_RE.match(text)
        if heading or VOLUME_HEADING_RE.match(text) or not text:
            flush()
            if heading:
                chapters.append(Chapter(source, f"Chapter {heading.group(1).upper()}"))
            continue
        paragraph.append(text)
    flush()
    return chapters


def harvard_chapters(source: TextSource, sentences: list[str]) -> list[Chapter]:
    """Group the Harvard sentences into their lists of ten, one chapter per list."""
    chapters: list[Chapter] = []
    for start in range(0, len(sentences), HARVARD_LIST_SIZE):
        number = start // HARVARD_LIST_SIZE + 1
        chunk = sentences[start:start + HARVARD_LIST_SIZE]
        chapters.append(Chapter(source, f"List {number}", [clean_sentence(s) for s in chunk]))
    return chapters


def drop_shared_sentences(chapters: list[Chapter], earlier: set[str]) -> None:
    """Turn sentences whose transcript an earlier split family already has into gaps.

    Stock phrases ("I do not know.") recur across novels; removing them keeps the
    train / dev / test texts disjoint sentence by sentence, not just book by book.
    """
    for chapter in chapters:
        chapter.sentences = [s if s is None or to_transcript(s) not in earlier else None
                             for s in chapter.sentences]


def build(libraries: dict[str, Path], data_dir: Path) -> None:
    """Decode the R data, clean it and write one committed file per source."""
    austen = read_lazyload_db(libraries["janeaustenr"])
    stringr = read_lazyload_db(libraries["stringr"])
    data_dir.mkdir(parents=True, exist_ok=True)
    earlier_families: set[str] = set()
    for family in FAMILY_ORDER:
        family_transcripts: set[str] = set()
        for source in (s for s in SOURCES if s.family == family):
            chapters = source_chapters(source, austen, stringr)
            drop_shared_sentences(chapters, earlier_families)
            family_transcripts |= {to_transcript(s) for c in chapters for s in c.sentences if s}
            report_and_write(source, chapters, data_dir)
        earlier_families |= family_transcripts


def source_chapters(source: TextSource, austen: dict, stringr: dict) -> list[Chapter]:
    """The cleaned chapters of one source from the decoded R data."""
    if source.key == HARVARD_KEY:
        return harvard_chapters(source, stringr[HARVARD_R_OBJECT].value)
    return novel_chapters(source, austen[source.key].value)


def report_and_write(source: TextSource, chapters: list[Chapter], data_dir: Path) -> None:
    """Write one source file and log what it holds."""
    kept = [s for chapter in chapters for s in chapter.sentences if s is not None]
    dropped = sum(s is None for chapter in chapters for s in chapter.sentences)
    path = write_source(source, chapters, data_dir)
    LOGGER.info("%-16s %3d chapters %6d sentences kept %5d dropped %8d words -> %s "
                "(%d bytes)", source.key, len(chapters), len(kept), dropped,
                sum(len(s.split()) for s in kept), path.name, path.stat().st_size)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deb-dir", type=Path, default=None,
                        help="directory holding r-cran-janeaustenr_*.deb and r-cran-stringr_*.deb")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with tempfile.TemporaryDirectory() as tmp:
        build(fetch_packages(Path(tmp), args.deb_dir), args.out)


if __name__ == "__main__":
    main()
