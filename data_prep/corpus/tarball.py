"""Deterministic, atomically written ``.tar.gz`` archives of a directory tree.

Same tree, same bytes: members in sorted depth-first order, uid/gid 0 with empty owner names,
fixed modes and mtimes, GNU tar headers, and a gzip header with mtime 0 and no file name.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from deepspeech2.core.files import atomic_path

__all__ = ["ARCHIVE_MTIME", "write_tarball"]

ARCHIVE_MTIME = 1_428_883_200   # 2015-04-13 00:00 UTC, when LibriSpeech was published
DIR_MODE, FILE_MODE = 0o755, 0o644
GZIP_LEVEL = 6                  # FLAC hardly compresses: a higher level only costs time


class _HashingWriter:
    """A write-only file wrapper that keeps an MD5 of everything written."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.md5 = hashlib.md5()

    def write(self, data: bytes) -> int:
        """Write ``data`` and add it to the digest."""
        self.md5.update(data)
        return self.raw.write(data)

    def flush(self) -> None:
        """Flush the underlying file."""
        self.raw.flush()


def _walk(root: Path, relative: Path) -> Iterator[Path]:
    """Paths under ``root / relative`` (itself first), depth-first in sorted name order."""
    yield relative
    path = root / relative
    if path.is_dir():
        for child in sorted(os.listdir(path)):
            yield from _walk(root, relative / child)


def _tarinfo(root: Path, relative: Path) -> tarfile.TarInfo:
    """A normalised header for one member."""
    path = root / relative
    info = tarfile.TarInfo(relative.as_posix())
    info.mtime = ARCHIVE_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if path.is_dir():
        info.type, info.mode = tarfile.DIRTYPE, DIR_MODE
    elif path.is_file():
        info.type, info.mode, info.size = tarfile.REGTYPE, FILE_MODE, path.stat().st_size
    else:
        raise ValueError(f"{path}: only directories and regular files can be archived")
    return info


def write_tarball(root: Path, top: str, destination: Path) -> str:
    """Archive ``root/top`` (member names start with ``top/``) into ``destination``.

    The archive is written to a temporary file beside it and renamed only when complete, so
    ``destination`` never names a half-written file.  Returns the archive's MD5 hex digest.
    """
    if not (root / top).is_dir():
        raise FileNotFoundError(f"{root / top} is not a directory")
    with atomic_path(destination) as partial, open(partial, "xb") as raw:
        hashing = _HashingWriter(raw)
        with gzip.GzipFile(filename="", mode="wb", fileobj=hashing, compresslevel=GZIP_LEVEL,
                           mtime=0) as compressed:
            with tarfile.open(fileobj=compressed, mode="w", format=tarfile.GNU_FORMAT) as tar:
                for relative in _walk(root, Path(top)):
                    info = _tarinfo(root, relative)
                    if info.isdir():
                        tar.addfile(info)
                    else:
                        with open(root / relative, "rb") as member:
                            tar.addfile(info, member)
        raw.flush()
        os.fsync(raw.fileno())
    return hashing.md5.hexdigest()
