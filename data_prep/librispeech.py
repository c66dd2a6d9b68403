"""Prepare LibriSpeech for DeepSpeech2 in deepspeech.pytorch's layout, with V3 JSON and V2.1 CSV manifests.

``OUT/{train,val,test_clean,test_other}/{wav,txt}/<utt>.{wav,txt}`` (and ``test_heldout`` when the
synthetic corpus's ``test-heldout`` part is present): 16 kHz / 16-bit / mono WAV and one upper-cased
transcript per utterance; ``OUT/libri_<split>_manifest.{json,csv}`` sorted by duration (train kept to
``[min_duration, max_duration]`` s); ``OUT/prepare_summary.json``. Bad inputs are logged, skipped and
counted. Every output file is written atomically and recorded (size, CRC-32), so a re-run checks and
keeps intact work, re-converts damaged outputs, and an interrupted run resumes.

This module is the CLI and orchestrator; the work is in ``data_prep.libri``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Sequence

from data_prep.download import DEFAULT_MIRRORS, DownloadError, download_librispeech
from data_prep.extract import ArchiveError
from data_prep.libri.layout import (EXTRACT_DIR, NOT_DOWNLOADABLE, OUTPUT_OF, PROBLEMS, SAMPLE_RATE, SPLIT_GROUPS,
                                    PreparationError, Result)
from data_prep.libri.outputs import log_summary, summarize, write_manifests
from data_prep.libri.part import prepare_part
from deepspeech2.core.files import atomic_write_text, is_partial, rerun_advice
from deepspeech2.data.vocab import Vocab

__all__ = ["SPLIT_GROUPS", "SAMPLE_RATE", "PROBLEMS", "PreparationError", "prepare_librispeech", "main"]

logger = logging.getLogger(__name__)


def _requested_parts(files_to_use: Sequence[str] | str | None) -> list[str]:
    """Part names (``dev-clean``) from archive names (``dev-clean.tar.gz``) or part names."""
    if files_to_use is None:
        return [part for parts in SPLIT_GROUPS.values() for part in parts]
    items = files_to_use.split(",") if isinstance(files_to_use, str) else files_to_use
    parts = [item.strip().removesuffix(".tar.gz") for item in items if item.strip()]
    unknown = [p for p in parts if p not in OUTPUT_OF]
    if unknown:
        raise ValueError(f"unknown LibriSpeech part(s) {unknown}; known: {list(OUTPUT_OF)}")
    return list(dict.fromkeys(parts))


def _locate_inputs(parts: list[str], tarball_dir: Path, explicit: bool, download: bool,
                   mirrors: Sequence[str]) -> dict[str, tuple[str, Path]]:
    """part -> ("archive", path) or ("tree", path); an archive wins over an extracted tree."""
    found: dict[str, tuple[str, Path]] = {}
    for part in parts:
        archive = tarball_dir / f"{part}.tar.gz"
        trees = [t for t in (tarball_dir / "LibriSpeech" / part, tarball_dir / part) if t.is_dir()]
        if not archive.is_file() and not trees and download and part not in NOT_DOWNLOADABLE:
            download_librispeech([archive.name], tarball_dir, mirrors)
        if archive.is_file():
            found[part] = ("archive", archive)
        elif trees:
            found[part] = ("tree", trees[0])
        if part in found:
            logger.info("%s: input is the %s %s", part, *found[part])
        elif explicit:
            how = ("ds2-make-corpus writes it" if part in NOT_DOWNLOADABLE else "use --download to fetch it")
            raise FileNotFoundError(f"{part}: neither {archive} nor an extracted {tarball_dir}/LibriSpeech/{part}/ "
                                    f"exists ({how})")
    if not found:
        raise FileNotFoundError(f"no LibriSpeech input in {tarball_dir}: expected <part>.tar.gz archives or "
                                f"LibriSpeech/<part>/ trees for {parts} (use --download to fetch them)")
    return found


def _check_writable(target: Path) -> None:
    """Create ``target`` and write a probe file there, or raise PreparationError naming the folder."""
    try:
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=target):
            pass
    except OSError as err:
        raise PreparationError(f"cannot write to the target dir {target}: {err.strerror or err}; "
                               f"choose another --target-dir or make it writable") from None


def _prepare_parts(inputs: dict, target: Path, num_workers: int) -> tuple[list[Result], list[str]]:
    """Every part's results, and the parts that gave no usable utterance (each warned about loudly)."""
    vocab, claimed, results, empty = Vocab(), set(), [], []
    for part, (kind, source) in inputs.items():
        part_results = prepare_part(part, kind, source, target, vocab, num_workers, claimed)
        for r in part_results:
            if r.status != "ok":
                logger.warning("%s: skipped utterance %s (%s): %s", r.file, r.utt, r.status, r.detail)
        if not any(r.status == "ok" for r in part_results):
            empty.append(part)
            logger.warning("!!! %s: %s holds NO usable utterance (%d skipped as bad input); its split gets "
                           "nothing from it", part, source, len(part_results))
        results += part_results
    return results, empty


def _clean_stale_temporaries(target: Path) -> None:
    """Remove temporary files a killed run left behind (outputs are renamed into place when complete)."""
    for out_split in SPLIT_GROUPS:
        for sub in ("wav", "txt"):
            folder = target / out_split / sub
            if folder.is_dir():
                with os.scandir(folder) as entries:
                    for entry in entries:
                        if is_partial(entry.name):
                            os.unlink(entry.path)


def prepare_librispeech(target_dir: str | Path, tarball_dir: str | Path | None,
                        files_to_use: Sequence[str] | str | None = None, download: bool = False,
                        min_duration: float = 1.0, max_duration: float = 15.0, num_workers: int = 1,
                        strict: bool = False, mirrors: Sequence[str] = DEFAULT_MIRRORS) -> dict:
    """Prepare the requested LibriSpeech parts into ``target_dir``; returns the summary dict.

    ``tarball_dir`` (default: ``target_dir``) holds ``<part>.tar.gz`` archives and/or extracted
    ``[LibriSpeech/]<part>/`` trees. Without ``files_to_use`` every part found is used; parts named
    explicitly must exist (or be downloaded with ``download``). Duration limits (<= 0: off) apply to
    train only. With ``strict``, PreparationError is raised after everything is written if any input
    was skipped as bad or an input gave no usable utterance. "test-heldout" (ds2-make-corpus's voices
    never used elsewhere; not an official LibriSpeech part) becomes ``test_heldout`` when present.
    """
    if num_workers < 1:
        raise ValueError(f"num_workers must be >= 1, got {num_workers}")
    if 0 < max_duration < min_duration:
        raise ValueError(f"min_duration {min_duration} s is above max_duration {max_duration} s")
    start = time.perf_counter()
    target = Path(target_dir).absolute()
    tarball_dir = Path(tarball_dir).absolute() if tarball_dir else target
    inputs = _locate_inputs(_requested_parts(files_to_use), tarball_dir, files_to_use is not None, download, mirrors)
    _check_writable(target)
    _clean_stale_temporaries(target)
    results, empty = _prepare_parts(inputs, target, num_workers)
    shutil.rmtree(target / EXTRACT_DIR, ignore_errors=True)
    out_splits = [s for s in SPLIT_GROUPS if any(OUTPUT_OF[p] == s for p in inputs)]
    splits = {s: write_manifests(target, s, results, min_duration, max_duration) for s in out_splits}
    settings = {"min_duration": min_duration, "max_duration": max_duration, "num_workers": num_workers,
                "strict": strict}
    summary = summarize(target, inputs, results, splits, time.perf_counter() - start, settings)
    summary["empty_inputs"] = empty
    atomic_write_text(target / "prepare_summary.json", json.dumps(summary, indent=2) + "\n")
    log_summary(summary)
    if strict and (summary["skipped"] or empty):
        raise PreparationError(f"--strict: {sum(summary['skipped'].values())} utterance(s) skipped as bad "
                               f"input {summary['skipped']}, inputs with no usable utterance: {empty or 'none'}; "
                               f"see the log or prepare_summary.json", summary)
    return summary


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ds2-prepare-librispeech", description=__doc__.split("\n")[0])
    p.add_argument("--target-dir", required=True, help="output directory (splits, manifests, summary)")
    p.add_argument("--tarball-dir", help="folder with <part>.tar.gz and/or LibriSpeech/<part>/ (default: target dir)")
    p.add_argument("--files-to-use", help="comma-separated parts, e.g. train-clean-100.tar.gz,dev-clean.tar.gz "
                                          "(default: every part found)")
    p.add_argument("--download", action="store_true", help="download missing archives from openslr (md5-checked)")
    p.add_argument("--mirror", action="append", help="download base URL, repeatable (default: openslr + mirrors)")
    p.add_argument("--min-duration", type=float, default=1.0, help="drop shorter train utterances (s; 0 = off)")
    p.add_argument("--max-duration", type=float, default=15.0, help="drop longer train utterances (s; 0 = off)")
    p.add_argument("--num-workers", type=int, default=max(1, os.cpu_count() or 1), help="conversion processes")
    p.add_argument("--strict", action="store_true",
                   help="exit non-zero if any input was skipped as bad or an archive gave no usable utterance")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point ``ds2-prepare-librispeech``; returns the exit status."""
    args = _parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        prepare_librispeech(args.target_dir, args.tarball_dir, args.files_to_use, args.download,
                            args.min_duration, args.max_duration, args.num_workers, args.strict,
                            args.mirror or DEFAULT_MIRRORS)
    except PreparationError as err:
        logger.error("%s", err)
        return 1
    except (ArchiveError, DownloadError, FileNotFoundError, ValueError) as err:
        logger.error("preparation failed: %s", err)
        return 1
    except OSError as err:  # e.g. ENOSPC while extracting or writing wav/txt (the error names the file)
        logger.error("preparation failed: %s; %s to resume (finished utterances are kept)", err,
                     rerun_advice(err, "--target-dir"))
        return 1
    except KeyboardInterrupt:
        logger.error("interrupted; run the same command again to resume")
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
