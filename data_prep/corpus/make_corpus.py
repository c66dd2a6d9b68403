"""``ds2-make-corpus``: synthesise LibriSpeech-format ``<split>.tar.gz`` archives offline.

    ds2-make-corpus --out DIR --split train-clean-100:2.0 --split dev-clean:0.2 \\
        --split test-clean:0.2 --split test-other:0.2 [--seed N] [--jobs N]

Each split is planned from (name, hours, seed) alone, rendered in parallel into a staging tree
(resumable: finished FLAC files are kept), archived deterministically, and recorded in
``DIR/<split>.report.json``; a split whose archive and record match is skipped on a re-run.
``DIR/generation_report.json`` summarises the run, and ``DIR/librispeech-lm-norm.txt.gz`` is the LM
text (every sentence of the train-family books, never dev or test text; openslr's name for it).
``--max-train-seconds S`` plans no training utterance longer than S seconds: a recipe whose
preparation drops longer ones (``ds2-prepare-librispeech --max-duration``) then synthesises none of
them; dev and test splits keep LibriSpeech-like lengths.

Besides the seven LibriSpeech names, ``--split test-heldout:H`` makes a split that is NOT part of
LibriSpeech: test-family text read only by held-out voices (flite awb, espeak-ng en-gb-scotland and
en-029) that no other split ever uses — recognition of voices never heard in training.
``ds2-prepare-librispeech`` prepares it as ``test_heldout`` (``libri_test_heldout_manifest.*``).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import math
import multiprocessing
import os
import shutil
import sys
import time
from pathlib import Path

from tqdm import tqdm

from data_prep.corpus.lm_text import write_lm_text
from data_prep.corpus.metadata import write_split_text_files
from data_prep.corpus.plan import SplitPlan, plan_split, seed_sequence, speech_bounds
from data_prep.corpus.report import CpuClock, machine_load, split_statistics, summarise
from data_prep.corpus.sources import TRAIN, Chapter, load_family
from data_prep.corpus.splits import SPLIT_NAMES, SPLITS, parse_split_arg
from data_prep.corpus.synth import (
    EngineMissingError, RenderJob, check_engines, render_utterance)
from data_prep.corpus.tarball import write_tarball
from deepspeech2.core.files import PARTIAL_MARK, rerun_advice

__all__ = ["GENERATOR_VERSION", "generate_split", "main", "make_corpus"]

LOGGER = logging.getLogger(__name__)
# Bump whenever the same arguments would give different audio. v2: held-out voices (test-heldout) left
# out of the other splits; v3: "Mr"/"Mrs" without a period spelled out (only the test family's book); v4: noise
# spectra shaped at an FFT-friendly length (other noise samples; the synthesis takes ~40 % less time).
GENERATOR_VERSION = 4
TOP_DIR = "LibriSpeech"
REPORT_NAME = "generation_report.json"
UTTERANCE_STREAM = 3           # RNG sub-stream of a split for per-utterance randomness
FINGERPRINT_CHARS = 12
POOL_CHUNKSIZE = 4
LOG_FORMAT = "%(asctime)s %(levelname)s [%(filename)s:%(lineno)d] %(message)s"


def _fingerprint(name: str, hours: float, seed: int, minutes_per_speaker: float | None = None,
                 max_seconds: float | None = None) -> str:
    """Identifies the content of one split's archive."""
    key = f"{name}|{hours!r}|{seed}|v{GENERATOR_VERSION}"
    if minutes_per_speaker is not None:
        key += f"|mps{minutes_per_speaker!r}"
    if max_seconds is not None:
        key += f"|max{max_seconds!r}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:FINGERPRINT_CHARS]


def split_record_path(out_dir: Path, name: str) -> Path:
    """Where the record of a finished split is kept."""
    return out_dir / f"{name}.report.json"


def _finished_record(out_dir: Path, name: str, fingerprint: str) -> dict | None:
    """The record of a complete archive made with the same arguments, else None."""
    tarball, record_path = out_dir / f"{name}.tar.gz", split_record_path(out_dir, name)
    if not (tarball.is_file() and record_path.is_file()):
        return None
    record = json.loads(record_path.read_text(encoding="utf-8"))
    if record.get("fingerprint") != fingerprint:
        return None
    return record if record.get("tarball_bytes") == tarball.stat().st_size else None


def _clear_stale_staging(out_dir: Path, name: str, staging: Path) -> None:
    """Remove staging trees of other arguments and half-written files of an interrupted run.

    Finished FLAC files in ``staging`` are kept: they are exactly what a new run would make.
    """
    for stale in out_dir.glob(f".staging-{name}-*"):
        if stale != staging:
            shutil.rmtree(stale)
    for partial in staging.rglob(f"*{PARTIAL_MARK}*"):
        partial.unlink()


def _render_jobs(plan: SplitPlan, staging: Path) -> list[RenderJob]:
    """One render job per utterance, each with its own RNG stream."""
    jobs = []
    for chapter in plan.chapters:
        folder = (staging / TOP_DIR / plan.spec.name / str(chapter.speaker.speaker_id)
                  / str(chapter.chapter_id))
        for utterance in chapter.utterances:
            seed = seed_sequence(plan.seed, plan.spec, UTTERANCE_STREAM, utterance.index).entropy
            jobs.append(RenderJob(folder / f"{utterance.utt_id}.flac", utterance.speaker,
                                  utterance.tts_text, tuple(seed), plan.spec.noisy))
    return jobs


def _render_all(jobs: list[RenderJob], workers: int, label: str,
                progress: bool | None) -> dict[str, float]:
    """Run the jobs (in a process pool when ``workers`` > 1); return utterance durations."""
    durations: dict[str, float] = {}
    disable = None if progress is None else not progress     # None: only on a terminal
    with tqdm(total=len(jobs), unit="utt", desc=label, disable=disable) as bar:
        if workers <= 1:
            for utt_id, seconds, _ in map(render_utterance, jobs):
                durations[utt_id] = seconds
                bar.update()
        else:
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                for utt_id, seconds, _ in pool.imap_unordered(render_utterance, jobs,
                                                              POOL_CHUNKSIZE):
                    durations[utt_id] = seconds
                    bar.update()
                pool.close()
                pool.join()
    return durations


def generate_split(out_dir: Path, name: str, hours: float, seed: int = 0, jobs: int = 1,
                   chapters: list[Chapter] | None = None,
                   progress: bool | None = False, minutes_per_speaker: float | None = None,
                   max_seconds: float | None = None) -> dict:
    """Make ``out_dir/<name>.tar.gz`` unless an identical one exists; return its record.

    ``minutes_per_speaker`` overrides the LibriSpeech-like audio per reader (25 min train, 8 min
    dev/test): a small corpus with more, shorter readers generalises to unseen voices far better.
    ``max_seconds`` bounds the planned length of every utterance (see ``plan_split``).
    """
    spec = SPLITS[name]
    if minutes_per_speaker is not None:
        spec = dataclasses.replace(spec, minutes_per_speaker=minutes_per_speaker)
    fingerprint = _fingerprint(name, hours, seed, minutes_per_speaker, max_seconds)
    record = _finished_record(out_dir, name, fingerprint)
    if record is not None:
        LOGGER.info("%s: %s.tar.gz is complete (same arguments): skipped", name, name)
        return {**record, "skipped": True}
    clock, started = CpuClock(), time.monotonic()
    plan = plan_split(spec, hours, seed, chapters or load_family(spec.family), max_seconds)
    staging = out_dir / f".staging-{name}-{fingerprint}"
    _clear_stale_staging(out_dir, name, staging)
    LOGGER.info("%s: %d speakers, %d chapters, %d utterances planned", name,
                len(plan.speakers), len(plan.chapters), len(plan.utterances()))
    durations = _render_all(_render_jobs(plan, staging), jobs, name, progress)
    write_split_text_files(plan, durations, staging)
    tarball = out_dir / f"{name}.tar.gz"
    md5 = write_tarball(staging, TOP_DIR, tarball)
    record = {"split": name, "fingerprint": fingerprint, "seed": seed,
              "generator_version": GENERATOR_VERSION, "minutes_per_speaker": spec.minutes_per_speaker,
              "max_planned_seconds": max_seconds, "tarball": tarball.name,
              "tarball_bytes": tarball.stat().st_size, "md5": md5,
              **split_statistics(plan, durations, clock.elapsed(), time.monotonic() - started)}
    split_record_path(out_dir, name).write_text(json.dumps(record, indent=2) + "\n",
                                                encoding="utf-8")
    shutil.rmtree(staging)
    LOGGER.info("%s: %.3f h in %d utterances -> %s (md5 %s)", name, record["hours"],
                record["utterances"], tarball, md5)
    return {**record, "skipped": False}


def make_corpus(out_dir: Path | str, splits: dict[str, float], seed: int = 0, jobs: int = 1,
                progress: bool | None = False, minutes_per_speaker: float | None = None,
                max_train_seconds: float | None = None) -> dict:
    """Generate every requested split (name -> hours) into ``out_dir``; return the report.
    ``max_train_seconds`` bounds the planned utterance length of the training splits only.

    The report is also written to ``out_dir/generation_report.json``.  ``progress``: True
    shows a progress bar, None shows one on a terminal only.
    """
    out_dir = Path(out_dir)
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
        raise ValueError(f"unknown split(s) {unknown}; valid names: {', '.join(SPLIT_NAMES)}")
    check_engines()
    out_dir.mkdir(parents=True, exist_ok=True)
    load_before, started = machine_load(), time.monotonic()
    families: dict[str, list[Chapter]] = {}
    reports = {}
    for name, hours in splits.items():
        family = SPLITS[name].family
        if family not in families:
            families[family] = load_family(family)
        reports[name] = generate_split(out_dir, name, hours, seed, jobs, families[family], progress,
                                       minutes_per_speaker, max_train_seconds if family == TRAIN else None)
    lm_text, lm_count = write_lm_text(out_dir)
    LOGGER.info("LM text (train-family books only): %d sentences -> %s", lm_count, lm_text)
    report = summarise(reports, time.monotonic() - started, jobs, seed, load_before)
    (out_dir / REPORT_NAME).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line arguments; bad --split values exit with a message naming valid splits."""
    parser = argparse.ArgumentParser(
        prog="ds2-make-corpus",
        description="Synthesise LibriSpeech-format split archives with espeak-ng and flite.")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--split", action="append", required=True, metavar="NAME:HOURS",
                        help=f"split and hours of audio (repeatable); NAME is one of "
                             f"{', '.join(SPLIT_NAMES)}")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="parallel synthesis processes (default: CPU count)")
    parser.add_argument("--minutes-per-speaker", type=float, default=None, metavar="MIN",
                        help="audio per reader in every split (default: LibriSpeech-like 25 min "
                             "train, 8 min dev/test); fewer minutes = more distinct voices")
    parser.add_argument("--max-train-seconds", type=float, default=None, metavar="S",
                        help="plan no training-split utterance longer than S seconds (e.g. the "
                             "preparation's --max-duration, so that none is made only to be dropped); "
                             "default: LibriSpeech-like lengths up to ~26 s; dev/test splits always keep those")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.minutes_per_speaker is not None and not (0 < args.minutes_per_speaker < math.inf):
        parser.error("--minutes-per-speaker must be a positive number of minutes")
    if args.max_train_seconds is not None:
        try:
            speech_bounds(args.max_train_seconds)
        except ValueError as error:
            parser.error(f"--max-train-seconds: {error}")
    args.splits = {}
    for text in args.split:
        try:
            name, hours = parse_split_arg(text)
        except ValueError as error:
            parser.error(str(error))
        if name in args.splits:
            parser.error(f"split {name} given twice")
        args.splits[name] = hours
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; prints the report path, returns the exit status."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    LOGGER.info("ds2-make-corpus v%d: out=%s seed=%d jobs=%d splits=%s", GENERATOR_VERSION,
                args.out, args.seed, args.jobs, args.splits)
    try:
        report = make_corpus(args.out, args.splits, args.seed, args.jobs,
                             progress=False if args.quiet else None,
                             minutes_per_speaker=args.minutes_per_speaker,
                             max_train_seconds=args.max_train_seconds)
    except EngineMissingError as error:
        LOGGER.error("%s", error)
        return 1
    except OSError as error:  # e.g. ENOSPC: the error names the file; finished splits are kept
        LOGGER.error("cannot write the corpus: %s; %s (finished splits are kept)", error,
                     rerun_advice(error, "--out"))
        return 1
    run = report["this_run"]
    LOGGER.info("%.3f audio hours in %.1f s wall (%s audio-h per wall-minute, %s CPU-s per "
                "audio-hour)", run["audio_hours"], run["wall_seconds"],
                run["audio_hours_per_wall_minute"], run["cpu_seconds_per_audio_hour"])
    print(args.out / REPORT_NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
