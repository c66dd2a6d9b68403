"""Convert manifests between deepspeech.pytorch's V3 JSON and V2.1 CSV formats (the lab's ``json_to_csv.py``).

Both converters keep the entries in the order of their input — they never re-sort — so the two are
exact inverses: JSON -> CSV -> JSON gives back the same JSON, CSV -> JSON -> CSV the same CSV bytes.
(``ds2-prepare-librispeech`` already writes both formats sorted by duration, and that order carries over.)
"""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Sequence

from deepspeech2.data.manifest import (
    ManifestError, read_csv_manifest, read_json_manifest, write_csv_manifest, write_json_manifest,
)

__all__ = ["check_output_path", "json_to_csv", "csv_to_json", "common_root", "json_to_csv_main", "csv_to_json_main"]

logger = logging.getLogger(__name__)


def check_output_path(src: str | Path, dst: str | Path) -> None:
    """ValueError unless ``dst`` can take a converted manifest: not the input itself (not even via
    another spelling or a link) and not a directory. (The writers replace ``dst`` atomically.)"""
    src, dst = Path(src), Path(dst)
    if dst.is_dir():
        raise ValueError(f"{dst}: the output is a directory; give a file name, e.g. {dst / src.with_suffix('').name}")
    if dst.resolve() == src.resolve() or (dst.exists() and src.exists() and os.path.samefile(src, dst)):
        raise ValueError(f"{dst}: the output is the input manifest; refusing to overwrite it, give another name")


def json_to_csv(in_json: str | Path, out_csv: str | Path) -> int:
    """Write the V3 JSON manifest ``in_json`` as a V2.1 CSV (absolute paths, same order); returns the count."""
    check_output_path(in_json, out_csv)
    samples = read_json_manifest(in_json)
    write_csv_manifest(out_csv, samples)
    return len(samples)


def common_root(paths: Sequence[str | Path]) -> Path:
    """The deepest folder holding every path (for ``root/wav/x.wav`` + ``root/txt/x.txt``: ``root``)."""
    if not paths:
        raise ValueError("cannot infer a root path from an empty manifest; pass root_path")
    root = Path(os.path.commonpath([os.path.abspath(p) for p in paths]))
    return root.parent if len({os.path.abspath(p) for p in paths}) == 1 else root


def csv_to_json(in_csv: str | Path, out_json: str | Path, root_path: str | Path | None = None) -> int:
    """Write the V2.1 CSV manifest ``in_csv`` as V3 JSON (same order); returns the count.

    ``root_path`` defaults to the common parent folder of all listed files, which for the usual
    ``<split>/{wav,txt}/`` layout is the split folder; paths outside ``root_path`` stay absolute.
    """
    check_output_path(in_csv, out_json)
    samples = read_csv_manifest(in_csv)
    if root_path is None:
        root_path = common_root([p for s in samples for p in (s.wav_path, s.transcript_path)])
    write_json_manifest(out_json, root_path, samples)
    return len(samples)


def _run(argv: Sequence[str] | None, prog: str, src: str, dst: str, with_root: bool) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=f"Convert a {src} manifest to {dst} (order kept).")
    parser.add_argument("input", help=f"{src} manifest")
    parser.add_argument("output", help=f"{dst} manifest to write")
    if with_root:
        parser.add_argument("--root-path", help="root_path of the JSON (default: common parent of all files)")
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if with_root:
            count = csv_to_json(args.input, args.output, args.root_path)
        else:
            count = json_to_csv(args.input, args.output)
    except (ManifestError, ValueError, OSError) as err:
        logger.error("%s", err)
        return 1
    logger.info("wrote %d entries to %s", count, args.output)
    return 0


def json_to_csv_main(argv: Sequence[str] | None = None) -> int:
    """``ds2-json-to-csv IN.json OUT.csv``."""
    return _run(argv, "ds2-json-to-csv", "V3 JSON", "V2.1 CSV", with_root=False)


def csv_to_json_main(argv: Sequence[str] | None = None) -> int:
    """``ds2-csv-to-json IN.csv OUT.json [--root-path DIR]``."""
    return _run(argv, "ds2-csv-to-json", "V2.1 CSV", "V3 JSON", with_root=True)
