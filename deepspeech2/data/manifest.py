"""Manifests: the lists of (wav, transcript) pairs that training and evaluation read.

Two on-disk formats, chosen by suffix:

* ``.json`` — deepspeech.pytorch V3+:
  ``{"root_path": "<abs split dir>", "samples": [{"wav_path": "wav/x.wav", "transcript_path": "txt/x.txt"}, ...]}``
  (paths relative to ``root_path``; absolute ones are accepted too).
* ``.csv`` — deepspeech.pytorch V2.1 (what the MindSpore zoo reads): no header, one
  ``abs_wav_path,abs_txt_path`` per line.

Readers return absolute paths and keep the file's order; writers keep the order they are given
(the caller sorts, e.g. by duration) and replace the file atomically.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from deepspeech2.core.files import atomic_write_text

__all__ = [
    "ManifestError", "Sample", "read_manifest", "read_json_manifest", "read_csv_manifest",
    "write_json_manifest", "write_csv_manifest", "read_transcript",
]


class ManifestError(ValueError):
    """A manifest file is missing or malformed; the message names the file and the line/entry."""


@dataclass(frozen=True)
class Sample:
    """One utterance: absolute paths of its audio and of its one-line transcript."""

    wav_path: Path
    transcript_path: Path


def _absolute(raw: str, base: Path) -> Path:
    """``raw`` as a normalised absolute path; relative paths are taken relative to ``base``."""
    return Path(os.path.normpath(os.path.join(base, os.path.expanduser(raw))))


def read_manifest(path: str | Path) -> list[Sample]:
    """Read a V3 JSON (``.json``) or V2.1 CSV (``.csv``) manifest; raises ManifestError."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return read_json_manifest(path)
    if suffix == ".csv":
        return read_csv_manifest(path)
    raise ManifestError(f"{path}: unknown manifest type {suffix!r}; expected .json (V3) or .csv (V2.1)")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ManifestError(f"{path}: manifest file does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ManifestError(f"{path}: cannot read manifest ({err})") from None


def read_json_manifest(path: str | Path) -> list[Sample]:
    """Read a V3 JSON manifest. A relative ``root_path`` is taken relative to the manifest's folder."""
    path = Path(path)
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as err:
        raise ManifestError(f"{path}: line {err.lineno}, column {err.colno}: invalid JSON ({err.msg})") from None
    if not isinstance(data, dict) or "samples" not in data or "root_path" not in data:
        raise ManifestError(f'{path}: expected an object with "root_path" and "samples" keys (V3 manifest)')
    root, samples = data["root_path"], data["samples"]
    if not isinstance(root, str) or not isinstance(samples, list):
        raise ManifestError(f'{path}: "root_path" must be a string and "samples" a list')
    root_dir = _absolute(root, path.parent.absolute())
    out = []
    for index, entry in enumerate(samples):
        if not isinstance(entry, dict):
            raise ManifestError(f"{path}: samples[{index}]: expected an object, got {entry!r}")
        missing = [k for k in ("wav_path", "transcript_path") if not isinstance(entry.get(k), str) or not entry[k]]
        if missing:
            raise ManifestError(f"{path}: samples[{index}]: missing or empty key(s) {missing} in {entry!r}")
        out.append(Sample(_absolute(entry["wav_path"], root_dir), _absolute(entry["transcript_path"], root_dir)))
    return out


def read_csv_manifest(path: str | Path) -> list[Sample]:
    """Read a V2.1 CSV manifest (no header, ``wav,txt`` per line; blank lines ignored)."""
    path = Path(path)
    base = path.parent.absolute()
    out = []
    for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) != 2:
            raise ManifestError(f"{path}: line {lineno}: expected 2 comma-separated fields "
                                f"'wav_path,transcript_path', got {len(fields)}: {line!r}")
        if not fields[0].strip() or not fields[1].strip():
            raise ManifestError(f"{path}: line {lineno}: empty wav or transcript path: {line!r}")
        out.append(Sample(_absolute(fields[0].strip(), base), _absolute(fields[1].strip(), base)))
    return out


def _relative_posix(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when it lies under it, else absolute (both POSIX-style)."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).as_posix()


def write_json_manifest(path: str | Path, root_path: str | Path, samples: Iterable[Sample]) -> Path:
    """Write a V3 JSON manifest (compact, like deepspeech.pytorch's ``json.dumps``); order is kept."""
    path, root = Path(path), Path(os.path.abspath(root_path))
    manifest = {
        "root_path": root.as_posix(),
        "samples": [{"wav_path": _relative_posix(s.wav_path, root),
                     "transcript_path": _relative_posix(s.transcript_path, root)} for s in samples],
    }
    atomic_write_text(path, json.dumps(manifest))
    return path


def write_csv_manifest(path: str | Path, samples: Iterable[Sample]) -> Path:
    """Write a V2.1 CSV manifest (absolute paths, no header); order is kept."""
    path = Path(path)
    lines = []
    for s in samples:
        wav, txt = os.path.abspath(s.wav_path), os.path.abspath(s.transcript_path)
        for p in (wav, txt):
            if "," in p or "\n" in p:
                raise ManifestError(f"{path}: cannot write {p!r} to a V2.1 CSV manifest (comma or newline in path)")
        lines.append(f"{wav},{txt}\n")
    atomic_write_text(path, "".join(lines))
    return path


def read_transcript(sample: Sample) -> str:
    """The sample's transcript text, surrounding whitespace stripped."""
    try:
        return Path(sample.transcript_path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise ManifestError(f"{sample.transcript_path}: cannot read transcript ({err})") from None
