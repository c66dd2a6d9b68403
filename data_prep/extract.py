"""Safe extraction of (.tar / .tar.gz) corpus archives.

Every member is checked before anything is written: only regular files and directories with
relative, ``..``-free names that stay inside the destination are allowed. Links, devices and FIFOs
are refused. Where Python's ``tarfile.data_filter`` exists (3.12, and 3.11.4+ backports) it is
applied during extraction as a second layer.
"""
from __future__ import annotations

import gzip
import logging
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from deepspeech2.core.files import naming

__all__ = ["ArchiveError", "UnsafeArchiveError", "safe_extract", "check_members"]

logger = logging.getLogger(__name__)

_HAS_DATA_FILTER = hasattr(tarfile, "data_filter")
# Errors tarfile/gzip/zlib raise on truncated or corrupt archives.
_CORRUPT_ERRORS = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)
_FILTER_ERRORS = (tarfile.FilterError,) if _HAS_DATA_FILTER else ()


class ArchiveError(RuntimeError):
    """An archive is missing, truncated, corrupt or cannot be extracted."""


class UnsafeArchiveError(ArchiveError):
    """An archive member would write outside the destination or is not a plain file/directory."""


def _member_problem(member: tarfile.TarInfo, dest: Path) -> str | None:
    """Why ``member`` must not be extracted into ``dest`` (resolved), or None when it is safe."""
    name = member.name
    if not name or "\x00" in name:
        return "empty or invalid name"
    pure = PurePosixPath(name)
    if pure.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in pure.parts or ".." in name.split("\\"):
        return "'..' path component"
    if member.issym() or member.islnk():
        return f"link to {member.linkname!r}"
    if member.ischr() or member.isblk():
        return "device file"
    if member.isfifo():
        return "FIFO"
    if not (member.isreg() or member.isdir()):
        return f"unsupported member type {member.type!r}"
    target = (dest / name).resolve()
    if target != dest and dest not in target.parents:
        return f"resolves to {target}, outside {dest}"
    return None


def check_members(tar: tarfile.TarFile, archive: str | Path, dest: str | Path) -> list[tarfile.TarInfo]:
    """All members of ``tar``, after checking every one; raises UnsafeArchiveError on the first bad one."""
    dest_resolved = Path(dest).resolve()
    try:
        members = tar.getmembers()  # reads the whole archive: truncation is detected here
    except _CORRUPT_ERRORS as err:
        raise ArchiveError(f"{archive}: archive is truncated or corrupt ({type(err).__name__}: {err})") from None
    for member in members:
        problem = _member_problem(member, dest_resolved)
        if problem:
            raise UnsafeArchiveError(f"{archive}: refusing unsafe member {member.name!r}: {problem}; "
                                     f"nothing was extracted")
    return members


def safe_extract(tar_path: str | Path, dest: str | Path) -> list[Path]:
    """Extract ``tar_path`` into ``dest`` after validating every member; returns the extracted files.

    Raises UnsafeArchiveError (nothing written) for absolute names, ``..``, links, devices, FIFOs or
    anything resolving outside ``dest``; ArchiveError for a missing, truncated or corrupt archive.
    """
    tar_path, dest = Path(tar_path), Path(dest)
    if not tar_path.is_file():
        raise ArchiveError(f"{tar_path}: archive does not exist")
    try:
        tar = tarfile.open(tar_path, "r:*")
    except (*_CORRUPT_ERRORS, OSError) as err:
        raise ArchiveError(f"{tar_path}: not a readable tar archive ({type(err).__name__}: {err})") from None
    with tar:
        logger.info("checking every member of %s before extracting", tar_path)
        members = check_members(tar, tar_path, dest)
        dest.mkdir(parents=True, exist_ok=True)
        extra = {"filter": "data"} if _HAS_DATA_FILTER else {}
        bar = tqdm(members, desc=f"extracting {tar_path.name}", unit="file", mininterval=1.0, leave=False)
        try:
            tar.extractall(dest, members=bar, **extra)
        except _FILTER_ERRORS as err:  # the data filter disagreed with our checks: still refuse
            raise UnsafeArchiveError(f"{tar_path}: refusing unsafe member ({err})") from None
        except _CORRUPT_ERRORS as err:
            raise ArchiveError(f"{tar_path}: extraction failed at a truncated or corrupt member "
                               f"({type(err).__name__}: {err})") from None
        except OSError as err:  # e.g. ENOSPC: the error names the folder being extracted into
            raise naming(err, dest) from None
    files = [dest / m.name for m in members if m.isreg()]
    logger.info("extracted %d files from %s into %s", len(files), tar_path, dest)
    return files
