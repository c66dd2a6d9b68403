"""One LibriSpeech part (``dev-clean``…), from an archive or an extracted tree to verified outputs.

Each part keeps a record in ``<target>/.prep_state/``: ``<part>.json`` once the part is done (the
archive's fingerprint and every utterance's result) and ``<part>.journal.jsonl`` while it runs, so a
re-run or an interrupted run re-uses exactly the outputs that still match their recorded size and
CRC-32, and re-converts the rest.
"""
from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from data_prep.extract import ArchiveError, safe_extract
from data_prep.libri.layout import EXTRACT_DIR, OUTPUT_OF, STATE_DIR, Result, Task, txt_path, wav_path
from data_prep.libri.utterance import convert, verified_duration
from deepspeech2.core.files import atomic_write_text
from deepspeech2.data.vocab import Vocab, normalize_transcript

__all__ = ["prepare_part"]

logger = logging.getLogger(__name__)
_MAX_CHUNK = 64


def _read_trans(path: Path) -> dict[str, str]:
    """``<utt> TEXT`` lines of a ``*.trans.txt`` (an id alone gives an empty transcript)."""
    entries = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.strip().split(maxsplit=1)
        if fields:
            entries[fields[0]] = fields[1] if len(fields) > 1 else ""
    return entries


def _scan(tree: Path, target: Path, out_split: str, vocab: Vocab, claimed: set,
          records: dict[str, Result]) -> tuple[list[Task], list[Result]]:
    """Pair every flac with its transcript line; returns conversion tasks and problems found."""
    tasks, problems = [], []

    def problem(utt: str, reason: str, file: Path, detail: str) -> None:
        problems.append(Result(utt, out_split, reason, file=str(file), detail=detail))

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
                old = records.get(utt)
                tasks.append(Task(utt, str(flacs[utt]), text, str(wav_path(target, out_split, utt)),
                                  str(txt_path(target, out_split, utt)),
                                  old.size if old else 0, old.crc32 if old else 0))
    return tasks, problems


def _run_tasks(tasks: list[Task], out_split: str, label: str, num_workers: int, journal: Path) -> list[Result]:
    """Convert in a process pool (or in-process for one worker) with a progress bar; every result is
    appended to ``journal`` as it arrives, so an interrupted run knows what it already wrote."""
    if not tasks:
        return []
    results = []
    with tqdm(total=len(tasks), desc=label, unit="file", mininterval=1.0) as bar, \
            open(journal, "a", encoding="utf-8") as log:
        pool = None
        if num_workers <= 1:
            outcomes = map(convert, tasks)
        else:
            pool = multiprocessing.get_context("spawn").Pool(num_workers)
            outcomes = pool.imap(convert, tasks, chunksize=max(1, min(_MAX_CHUNK, len(tasks) // (num_workers * 8))))
        try:
            for task, (status, duration, converted, detail, size, crc32) in zip(tasks, outcomes):
                result = Result(task.utt, out_split, status, duration, converted, task.flac, detail, size, crc32)
                results.append(result)
                if status == "ok":
                    log.write(json.dumps(asdict(result)) + "\n")
                    log.flush()
                bar.update()
        finally:
            if pool is not None:
                pool.terminate()
    return results


def _fingerprint(archive: Path) -> dict:
    stat = archive.stat()
    return {"archive": str(archive.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _load_records(state: Path, journal: Path) -> tuple[dict | None, list[Result]]:
    """(fingerprint, results) of the finished record, then the journal's results on top."""
    fingerprint, results = None, []
    try:
        record = json.loads(state.read_text(encoding="utf-8"))
        fingerprint, results = record.get("fingerprint"), [Result(**r) for r in record["results"]]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        lines = journal.read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    for line in lines:
        try:
            results.append(Result(**json.loads(line)))
        except (ValueError, TypeError):  # a line torn by a kill
            continue
    return fingerprint, results


def _cached_results(fingerprint: dict | None, results: list[Result], archive: Path, target: Path,
                    claimed: set) -> list[Result] | None:
    """The recorded results of this very archive, if every recorded output is still intact."""
    if not results or fingerprint != _fingerprint(archive):
        return None
    for r in results:
        if r.status == "ok":
            txt = txt_path(target, r.out_split, r.utt)
            try:
                transcript = txt.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                return None
            if not transcript.strip() or verified_duration(wav_path(target, r.out_split, r.utt), txt, transcript, r.size, r.crc32) is None:
                logger.warning("%s: output no longer matches its record; re-converting the part",
                               wav_path(target, r.out_split, r.utt))
                return None
    claimed.update((r.out_split, r.utt) for r in results if r.status == "ok")
    for r in results:
        r.converted = False
    return results


def _extracted_tree(part: str, archive: Path, extract_dir: Path) -> Path:
    if not (extract_dir / ".complete").is_file():
        shutil.rmtree(extract_dir, ignore_errors=True)
        safe_extract(archive, extract_dir)
        (extract_dir / ".complete").touch()
    tree = extract_dir / "LibriSpeech" / part
    if not tree.is_dir():
        raise ArchiveError(f"{archive}: does not contain LibriSpeech/{part}/")
    return tree


def prepare_part(part: str, kind: str, source: Path, target: Path, vocab: Vocab,
                 num_workers: int, claimed: set) -> list[Result]:
    """Convert one LibriSpeech part (``kind`` "archive" or "tree") into its output split."""
    out_split = OUTPUT_OF[part]
    state, journal = target / STATE_DIR / f"{part}.json", target / STATE_DIR / f"{part}.journal.jsonl"
    extract_dir = target / EXTRACT_DIR / part
    fingerprint, recorded = _load_records(state, journal)
    if kind == "archive":
        cached = _cached_results(fingerprint, recorded, source, target, claimed)
        if cached is not None:
            logger.info("%s: already prepared from %s and every output checked; nothing to do", part, source)
            return cached
        tree = _extracted_tree(part, source, extract_dir)
    else:
        tree = source
    for sub in ("wav", "txt"):
        (target / out_split / sub).mkdir(parents=True, exist_ok=True)
    records = {r.utt: r for r in recorded if r.status == "ok"}
    tasks, problems = _scan(tree, target, out_split, vocab, claimed, records)
    logger.info("%s: %d utterances to convert or check from %s -> %s", part, len(tasks), tree, target / out_split)
    journal.parent.mkdir(parents=True, exist_ok=True)
    results = problems + _run_tasks(tasks, out_split, part, num_workers, journal)
    if kind == "archive":  # name bad files by their place in the archive, not the temporary tree
        for r in results:
            if r.file.startswith(str(extract_dir) + os.sep):
                r.file = f"{source}:{r.file[len(str(extract_dir)) + 1:]}"
        shutil.rmtree(extract_dir, ignore_errors=True)
    record = {"fingerprint": _fingerprint(source) if kind == "archive" else None,
              "results": [asdict(r) for r in results]}
    atomic_write_text(state, json.dumps(record))
    journal.unlink(missing_ok=True)
    return results
