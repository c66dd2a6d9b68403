"""Prepare LibriSpeech for DeepSpeech2 in deepspeech.pytorch's layout, with V3 JSON and V2.1 CSV manifests.

``OUT/{train,val,test_clean,test_other}/{wav,txt}/<utt>.{wav,txt}``: 16 kHz / 16-bit / mono WAV and
one upper-cased transcript per utterance; ``OUT/libri_<split>_manifest.{json,csv}`` sorted by duration
(train kept to ``[min_duration, max_duration]`` s); ``OUT/prepare_summary.json``. Bad inputs are logged,
skipped and counted. Every output file is written atomically, so a re-run skips finished work and an
interrupted run resumes; an archive that was fully processed is not even re-extracted.
"""
from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import soundfile
from tqdm import tqdm

from data_prep.download import DEFAULT_MIRRORS, DownloadError, download_librispeech
from data_prep.extract import ArchiveError, safe_extract
from deepspeech2.core.files import atomic_path, atomic_write_text, is_partial
from deepspeech2.data.audio import AudioError, load_audio
from deepspeech2.data.manifest import Sample, write_csv_manifest, write_json_manifest
from deepspeech2.data.vocab import Vocab, normalize_transcript

__all__ = ["SPLIT_GROUPS", "SAMPLE_RATE", "PROBLEMS", "PreparationError", "prepare_librispeech", "main"]

logger = logging.getLogger(__name__)

# Output split -> the official LibriSpeech parts it merges (deepspeech.pytorch's grouping).
SPLIT_GROUPS: dict[str, tuple[str, ...]] = {
    "train": ("train-clean-100", "train-clean-360", "train-other-500"),
    "val": ("dev-clean", "dev-other"),
    "test_clean": ("test-clean",),
    "test_other": ("test-other",),
}
_OUTPUT_OF = {part: out for out, parts in SPLIT_GROUPS.items() for part in parts}
_FILTERED = ("train",)  # only training data is kept to the duration limits; eval keeps everything
SAMPLE_RATE = 16000
# Reasons an utterance is skipped as bad input (--strict fails on any of them).
PROBLEMS = ("corrupt_audio", "empty_audio", "missing_transcript", "missing_audio",
            "empty_transcript", "oov_transcript", "duplicate_utterance")
_STATE_DIR, _EXTRACT_DIR = ".prep_state", ".extract"


class PreparationError(RuntimeError):
    """Preparation failed, or (``strict``) some input was skipped; ``summary`` holds the numbers."""

    def __init__(self, message: str, summary: dict | None = None):
        super().__init__(message)
        self.summary = summary


class _Task(NamedTuple):
    utt: str
    flac: str
    transcript: str
    wav: str
    txt: str


@dataclass
class _Result:
    utt: str
    out_split: str
    status: str            # "ok" or one of PROBLEMS
    duration: float = 0.0  # seconds (ok results)
    converted: bool = False
    file: str = ""
    detail: str = ""


# ----------------------------------------------------------------------------- one utterance (worker)
def _finished_duration(wav: Path, txt: Path, transcript: str) -> float | None:
    """Duration of an existing, valid output pair, or None when it must be (re)written."""
    try:
        if txt.read_text(encoding="utf-8") != transcript:
            return None
        info = soundfile.info(str(wav))
    except (OSError, RuntimeError, UnicodeDecodeError):
        return None
    ok = info.samplerate == SAMPLE_RATE and info.channels == 1 and info.subtype == "PCM_16" and info.frames > 0
    return info.frames / SAMPLE_RATE if ok else None


def _decode_int16(flac: str) -> np.ndarray:
    """(n,) int16 mono 16 kHz samples of ``flac``; raises AudioError / ValueError("empty")."""
    if os.path.getsize(flac) == 0:
        raise ValueError("file is empty (0 bytes)")
    try:
        info = soundfile.info(flac)
        data, rate = soundfile.read(flac, dtype="int16", always_2d=True)
    except Exception as err:  # soundfile raises LibsndfileError / RuntimeError on bad data
        raise AudioError(f"cannot decode ({err})") from None
    if data.shape[0] == 0:
        raise ValueError("audio has no samples")
    if 0 < info.frames < 1 << 62 and data.shape[0] != info.frames:  # FLAC may leave the count unknown
        raise AudioError(f"truncated: {data.shape[0]} of {info.frames} samples decoded")
    if rate == SAMPLE_RATE and data.shape[1] == 1:
        return data[:, 0]
    audio = load_audio(flac, SAMPLE_RATE)  # downmix + resample; int16 / 32767 scaling
    return np.clip(np.round(audio * 32767.0), -32768, 32767).astype(np.int16)


def _convert(task: _Task) -> tuple[str, float, bool, str]:
    """Convert one utterance; returns (status, duration, converted, detail). Runs in a worker."""
    wav, txt = Path(task.wav), Path(task.txt)
    duration = _finished_duration(wav, txt, task.transcript)
    if duration is not None:
        return "ok", duration, False, ""
    try:
        samples = _decode_int16(task.flac)
    except AudioError as err:
        return "corrupt_audio", 0.0, False, str(err)
    except ValueError as err:
        return "empty_audio", 0.0, False, str(err)
    with atomic_path(wav) as tmp:
        soundfile.write(str(tmp), samples, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    atomic_write_text(txt, task.transcript)
    return "ok", len(samples) / SAMPLE_RATE, True, ""


# ----------------------------------------------------------------------------- one LibriSpeech part
def _read_trans(path: Path) -> dict[str, str]:
    """``<utt> TEXT`` lines of a ``*.trans.txt`` (an id alone gives an empty transcript)."""
    entries = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.strip().split(maxsplit=1)
        if fields:
            entries[fields[0]] = fields[1] if len(fields) > 1 else ""
    return entries


def _scan(tree: Path, out_dir: Path, out_split: str, vocab: Vocab,
          claimed: set) -> tuple[list[_Task], list[_Result]]:
    """Pair every flac with its transcript line; returns conversion tasks and problems found."""
    tasks, problems = [], []

    def problem(utt: str, reason: str, file: Path, detail: str) -> None:
        problems.append(_Result(utt, out_split, reason, file=str(file), detail=detail))

    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames.sort()
        folder = Path(dirpath)
        flacs = {f[:-5]: folder / f for f in filenames if f.endswith(".flac")}
        trans: dict[str, tuple[str, Path]] = {}
        for name in sorted(f for f in filenames if f.endswith(".trans.txt")):
            trans.update({u: (t, folder / name) for u, t in _read_trans(folder / name).items()})
        for utt in sorted(flacs.keys() | trans.keys()):
            if utt not in trans:
                problem(utt, "missing_transcript", flacs[utt], "no line for it in any *.trans.txt")
            elif utt not in flacs:
                problem(utt, "missing_audio", trans[utt][1], f"{utt}.flac does not exist")
            elif not (text := normalize_transcript(trans[utt][0])):
                problem(utt, "empty_transcript", trans[utt][1], "transcript is empty")
            elif oov := vocab.oov_chars(text):
                problem(utt, "oov_transcript", trans[utt][1], f"characters {sorted(oov)} not in the vocabulary")
            elif (out_split, utt) in claimed:
                problem(utt, "duplicate_utterance", flacs[utt], f"{utt} already came from another input")
            else:
                claimed.add((out_split, utt))
                tasks.append(_Task(utt, str(flacs[utt]), text, str(out_dir / "wav" / f"{utt}.wav"),
                                   str(out_dir / "txt" / f"{utt}.txt")))
    return tasks, problems


def _run_tasks(tasks: list[_Task], out_split: str, label: str, num_workers: int) -> list[_Result]:
    """Convert in a process pool (or in-process for one worker) with a progress bar."""
    if not tasks:
        return []
    bar = tqdm(total=len(tasks), desc=label, unit="file", mininterval=1.0)
    results = []
    with bar:
        if num_workers <= 1:
            outcomes = map(_convert, tasks)
            pool = None
        else:
            pool = multiprocessing.get_context("spawn").Pool(num_workers)
            chunk = max(1, min(64, len(tasks) // (num_workers * 8)))
            outcomes = pool.imap(_convert, tasks, chunksize=chunk)
        try:
            for task, (status, duration, converted, detail) in zip(tasks, outcomes):
                results.append(_Result(task.utt, out_split, status, duration, converted, task.flac, detail))
                bar.update()
        finally:
            if pool is not None:
                pool.terminate()
    return results


def _fingerprint(archive: Path) -> dict:
    stat = archive.stat()
    return {"archive": str(archive.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _cached_results(state: Path, archive: Path, target: Path, claimed: set) -> list[_Result] | None:
    """Results recorded by an earlier run of this very archive, if all its outputs still exist."""
    try:
        record = json.loads(state.read_text(encoding="utf-8"))
        results = [_Result(**r) for r in record["results"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if record.get("fingerprint") != _fingerprint(archive):
        return None
    for r in results:
        if r.status == "ok" and not ((target / r.out_split / "wav" / f"{r.utt}.wav").is_file()
                                     and (target / r.out_split / "txt" / f"{r.utt}.txt").is_file()):
            return None
    claimed.update((r.out_split, r.utt) for r in results if r.status == "ok")
    for r in results:
        r.converted = False
    return results


def _prepare_part(part: str, kind: str, source: Path, target: Path, vocab: Vocab,
                  num_workers: int, claimed: set) -> list[_Result]:
    """Convert one LibriSpeech part (archive or extracted tree) into its output split."""
    out_split = _OUTPUT_OF[part]
    out_dir = target / out_split
    state = target / _STATE_DIR / f"{part}.json"
    extract_dir = target / _EXTRACT_DIR / part
    if kind == "archive":
        cached = _cached_results(state, source, target, claimed)
        if cached is not None:
            logger.info("%s: already prepared from %s; nothing to do", part, source)
            return cached
        if not (extract_dir / ".complete").is_file():
            shutil.rmtree(extract_dir, ignore_errors=True)
            safe_extract(source, extract_dir)
            (extract_dir / ".complete").touch()
        tree = extract_dir / "LibriSpeech" / part
        if not tree.is_dir():
            raise ArchiveError(f"{source}: does not contain LibriSpeech/{part}/")
    else:
        tree = source
    for sub in ("wav", "txt"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    tasks, problems = _scan(tree, out_dir, out_split, vocab, claimed)
    logger.info("%s: %d utterances to convert from %s -> %s", part, len(tasks), tree, out_dir)
    results = problems + _run_tasks(tasks, out_split, part, num_workers)
    if kind == "archive":  # name bad files by their place in the archive, not the temporary tree
        for r in results:
            if r.file.startswith(str(extract_dir) + os.sep):
                r.file = f"{source}:{r.file[len(str(extract_dir)) + 1:]}"
        state.parent.mkdir(parents=True, exist_ok=True)
        record = {"fingerprint": _fingerprint(source), "results": [asdict(r) for r in results]}
        atomic_write_text(state, json.dumps(record))
        shutil.rmtree(extract_dir, ignore_errors=True)
    return results


# ----------------------------------------------------------------------------- inputs, manifests, summary
def _requested_parts(files_to_use: Sequence[str] | str | None) -> list[str]:
    """Part names (``dev-clean``) from archive names (``dev-clean.tar.gz``) or part names."""
    if files_to_use is None:
        return [part for parts in SPLIT_GROUPS.values() for part in parts]
    items = files_to_use.split(",") if isinstance(files_to_use, str) else files_to_use
    parts = [item.strip().removesuffix(".tar.gz") for item in items if item.strip()]
    unknown = [p for p in parts if p not in _OUTPUT_OF]
    if unknown:
        raise ValueError(f"unknown LibriSpeech part(s) {unknown}; known: {list(_OUTPUT_OF)}")
    return list(dict.fromkeys(parts))


def _locate_inputs(parts: list[str], tarball_dir: Path, explicit: bool, download: bool,
                   mirrors: Sequence[str]) -> dict[str, tuple[str, Path]]:
    """part -> ("archive", path) or ("tree", path); an archive wins over an extracted tree."""
    found: dict[str, tuple[str, Path]] = {}
    for part in parts:
        archive = tarball_dir / f"{part}.tar.gz"
        trees = [t for t in (tarball_dir / "LibriSpeech" / part, tarball_dir / part) if t.is_dir()]
        if not archive.is_file() and not trees and download:
            download_librispeech([archive.name], tarball_dir, mirrors)
        if archive.is_file():
            found[part] = ("archive", archive)
        elif trees:
            found[part] = ("tree", trees[0])
        if part in found:
            logger.info("%s: input is the %s %s", part, *found[part])
        elif explicit:
            raise FileNotFoundError(f"{part}: neither {archive} nor an extracted {tarball_dir}/LibriSpeech/{part}/ "
                                    f"exists (use --download to fetch it)")
    if not found:
        raise FileNotFoundError(f"no LibriSpeech input in {tarball_dir}: expected <part>.tar.gz archives or "
                                f"LibriSpeech/<part>/ trees for {parts} (use --download to fetch them)")
    return found


def _write_manifests(target: Path, out_split: str, results: list[_Result], min_duration: float,
                     max_duration: float) -> dict:
    """Duration-sorted V3 JSON + V2.1 CSV manifests of one output split; returns its statistics."""
    ok = [r for r in results if r.status == "ok" and r.out_split == out_split]
    filtered: Counter = Counter()
    kept = []
    for r in ok:
        if out_split in _FILTERED and min_duration > 0 and r.duration < min_duration:
            filtered["too_short"] += 1
        elif out_split in _FILTERED and max_duration > 0 and r.duration > max_duration:
            filtered["too_long"] += 1
        else:
            kept.append(r)
    kept.sort(key=lambda r: (r.duration, r.utt))
    split_dir = target / out_split
    samples = [Sample(split_dir / "wav" / f"{r.utt}.wav", split_dir / "txt" / f"{r.utt}.txt") for r in kept]
    stem = target / f"libri_{out_split}_manifest"
    write_json_manifest(stem.with_suffix(".json"), split_dir, samples)
    write_csv_manifest(stem.with_suffix(".csv"), samples)
    return {"utterances": len(kept), "hours": sum(r.duration for r in kept) / 3600,
            "filtered": dict(filtered), "manifests": [str(stem.with_suffix(".json")), str(stem.with_suffix(".csv"))]}


def _summarize(target: Path, inputs: dict, results: list[_Result], splits: dict, wall: float,
               settings: dict) -> dict:
    """Counts, hours and throughput; throughput counts only files converted by this run."""
    good = [r for r in results if r.status == "ok"]
    bad = [r for r in results if r.status != "ok"]
    converted = [r for r in good if r.converted]
    new_hours = sum(r.duration for r in converted) / 3600
    return {
        "target_dir": str(target),
        "inputs": {part: {"kind": kind, "path": str(path)} for part, (kind, path) in inputs.items()},
        "splits": splits,
        "skipped": dict(Counter(r.status for r in bad)),
        "skipped_files": [{"file": r.file, "utterance": r.utt, "reason": r.status, "detail": r.detail} for r in bad],
        "files": {"prepared": len(good), "converted": len(converted), "reused": len(good) - len(converted)},
        "audio_hours": {"prepared": sum(r.duration for r in good) / 3600, "converted": new_hours},
        "wall_time_s": wall,
        "files_per_s": len(converted) / wall if wall > 0 else 0.0,
        "audio_hours_per_min": new_hours / (wall / 60) if wall > 0 else 0.0,
        **settings,
    }


def _log_summary(summary: dict) -> None:
    logger.info("LibriSpeech preparation summary (%s)", summary["target_dir"])
    for name, s in summary["splits"].items():
        filtered = ", ".join(f"{n} {k}" for k, n in s["filtered"].items()) or "none"
        logger.info("  %-10s %7d utterances %9.3f h  (filtered: %s)", name, s["utterances"], s["hours"], filtered)
    skipped = ", ".join(f"{k}={n}" for k, n in sorted(summary["skipped"].items())) or "none"
    f = summary["files"]
    logger.info("  skipped bad input: %s", skipped)
    hours = summary["audio_hours"]
    logger.info("  %d files, %.3f audio-h (%d files / %.3f h converted now, %d already done) in %.1f s: "
                "%.1f files/s, %.3f audio-h/min", f["prepared"], hours["prepared"], f["converted"],
                hours["converted"], f["reused"], summary["wall_time_s"], summary["files_per_s"],
                summary["audio_hours_per_min"])


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
    was skipped as bad.
    """
    if num_workers < 1:
        raise ValueError(f"num_workers must be >= 1, got {num_workers}")
    if 0 < max_duration < min_duration:
        raise ValueError(f"min_duration {min_duration} s is above max_duration {max_duration} s")
    start = time.perf_counter()
    target = Path(target_dir).absolute()
    tarball_dir = Path(tarball_dir).absolute() if tarball_dir else target
    parts = _requested_parts(files_to_use)
    inputs = _locate_inputs(parts, tarball_dir, files_to_use is not None, download, mirrors)
    target.mkdir(parents=True, exist_ok=True)
    _clean_stale_temporaries(target)
    vocab, claimed, results = Vocab(), set(), []
    for part, (kind, source) in inputs.items():
        part_results = _prepare_part(part, kind, source, target, vocab, num_workers, claimed)
        for r in part_results:
            if r.status != "ok":
                logger.warning("%s: skipped utterance %s (%s): %s", r.file, r.utt, r.status, r.detail)
        results += part_results
    shutil.rmtree(target / _EXTRACT_DIR, ignore_errors=True)
    out_splits = [s for s in SPLIT_GROUPS if any(_OUTPUT_OF[p] == s for p in inputs)]
    splits = {s: _write_manifests(target, s, results, min_duration, max_duration) for s in out_splits}
    settings = {"min_duration": min_duration, "max_duration": max_duration, "num_workers": num_workers,
                "strict": strict}
    summary = _summarize(target, inputs, results, splits, time.perf_counter() - start, settings)
    atomic_write_text(target / "prepare_summary.json", json.dumps(summary, indent=2) + "\n")
    _log_summary(summary)
    if strict and summary["skipped"]:
        raise PreparationError(f"--strict: {sum(summary['skipped'].values())} utterance(s) skipped as bad "
                               f"input {summary['skipped']}; see the log or prepare_summary.json", summary)
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
    p.add_argument("--strict", action="store_true", help="exit non-zero if any input was skipped as bad")
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
    except KeyboardInterrupt:
        logger.error("interrupted; run the same command again to resume")
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
