"""``ds2-build-lm``: a word n-gram ARPA LM for beam search, from transcripts and/or manifests."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Sequence

from deepspeech2.core.files import open_text
from deepspeech2.decoding.lm import SMOOTHINGS, build_arpa

__all__ = ["main"]

logger = logging.getLogger(__name__)


def _manifest_transcripts(path: str) -> list[str]:
    from deepspeech2.data.manifest import read_manifest  # lazy: only the --manifest option needs it

    return [Path(entry.transcript_path).read_text(encoding="utf-8").strip() for entry in read_manifest(path)]


def main(argv: Sequence[str] | None = None) -> int:
    """ds2-build-lm: build an ARPA word n-gram LM from transcript files and/or manifests."""
    parser = argparse.ArgumentParser(prog="ds2-build-lm", description=main.__doc__)
    parser.add_argument("--text", action="append", default=[],
                        help="file with one transcript per line, optionally .gz (repeatable), e.g. the "
                             "librispeech-lm-norm.txt.gz that ds2-make-corpus writes")
    parser.add_argument("--manifest", action="append", default=[],
                        help="JSON/CSV manifest whose transcripts to use (repeatable)")
    parser.add_argument("--order", type=int, default=3, help="n-gram order")
    parser.add_argument("--smoothing", choices=list(SMOOTHINGS), default="kneser-ney",
                        help="interpolated Kneser-Ney (default) or Witten-Bell")
    parser.add_argument("--out", required=True, help="output ARPA path")
    args = parser.parse_args(argv)
    if not args.text and not args.manifest:
        parser.error("give at least one --text or --manifest")
    from deepspeech2.core.logs import setup_logging

    setup_logging()
    sentences: list[str] = []
    for path in args.text:
        with open_text(path) as fh:
            sentences += fh.read().splitlines()
    for path in args.manifest:
        sentences += _manifest_transcripts(path)
    logger.info("building a %s %d-gram LM from %d sentences", args.smoothing, args.order, len(sentences))
    build_arpa(sentences, args.order, args.out, args.smoothing)
    logger.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
