"""Atomic file writes (a reader, or a crash, sees either the old file or the complete new one) and
text reading that also takes gzip files."""
from __future__ import annotations

import errno
import gzip
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, TextIO

__all__ = ["PARTIAL_MARK", "atomic_path", "atomic_write_text", "atomic_write_bytes", "atomic_copy", "is_partial",
           "naming", "open_text", "rerun_advice"]

PARTIAL_MARK = ".partial"  # in the name of every file still being written (stale ones are safe to delete)


def is_partial(path: str | Path) -> bool:
    """True for a temporary file left by :func:`atomic_path` (e.g. by a killed writer)."""
    return PARTIAL_MARK in Path(path).name


@contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a hidden temporary path beside ``path``; it is renamed over ``path`` when the block ends
    and deleted if the block raises. The name is unique per process and call, so parallel writers of
    the same file never collide. ``suffix`` ends the temporary name, for writers that append their
    own (``mindspore.save_checkpoint`` adds ``.ckpt`` to a name without it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{PARTIAL_MARK}{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_file(tmp: Path, data: bytes, sync: bool) -> None:
    with open(tmp, "xb") as fh:   # "x": a fresh file with the usual umask-based mode
        fh.write(data)
        if sync:
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_bytes(path: str | Path, data: bytes, sync: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (fsynced before the rename unless ``sync`` is false);
    returns the path. A failed write (e.g. ENOSPC) raises an OSError that names ``path``."""
    try:
        with atomic_path(path) as tmp:
            _write_file(tmp, data, sync)
    except OSError as err:
        raise naming(err, path) from None
    return Path(path)


def naming(error: OSError, path: str | Path) -> OSError:
    """``error`` as an OSError that names ``path`` when it names no file (write()/fsync() errors, e.g.
    ENOSPC, carry none); other errors are returned unchanged."""
    if error.errno is not None and error.filename is None:
        return OSError(error.errno, error.strerror, str(path))
    return error


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically, newlines as given; returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_copy(src: str | Path, dst: str | Path) -> Path:
    """Copy ``src`` to ``dst`` atomically; returns ``dst``."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dst)


def open_text(path: str | Path) -> TextIO:
    """Open a UTF-8 text file for reading; ``*.gz`` is decompressed on the fly (openslr's LM files)."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def rerun_advice(error: OSError, output_option: str) -> str:
    """What to do after ``error`` stopped a resumable writer whose output folder is ``output_option``:
    free space first when the disk is full, then run the same command again."""
    free = f"free some space (or choose another {output_option}), then " if error.errno == errno.ENOSPC else ""
    return f"{free}run the same command again"
