"""Download the LibriSpeech archives (openslr resource 12) with resume, retries, mirrors and md5 checks.

Bytes go to ``<name>.part`` and are resumed with an HTTP ``Range`` request; the finished file is
checked against the md5 openslr publishes and only then renamed to ``<name>``. Standard library
only (urllib), so it can be tested against a local ``http.server``.
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import logging
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

__all__ = [
    "LIBRISPEECH_ARCHIVES", "LIBRISPEECH_MD5", "DEFAULT_MIRRORS", "DownloadError", "ChecksumError",
    "md5sum", "download_file", "download_librispeech", "main",
]

logger = logging.getLogger(__name__)

# md5 of each archive as published at https://www.openslr.org/12 (resources/12/md5sum.txt).
LIBRISPEECH_MD5: dict[str, str] = {
    "train-clean-100.tar.gz": "2a93770f6d5c6c964bc36631d331a522",
    "train-clean-360.tar.gz": "c0e676e450a7ff2f54aeade5171606fa",
    "train-other-500.tar.gz": "d1a0fd59409feb2c614ce4d30c387708",
    "dev-clean.tar.gz": "42e2234ba48799c1f50f24a7926300a1",
    "dev-other.tar.gz": "c8d0bcc9cca99d4f8b62fcc847357931",
    "test-clean.tar.gz": "32fa31d27d2e1cad72775fee3f4849a9",
    "test-other.tar.gz": "fb5a50374b501bb3bac4815ee91d3135",
}
LIBRISPEECH_ARCHIVES: tuple[str, ...] = tuple(LIBRISPEECH_MD5)
# openslr's main host and its US / EU / CN mirrors, tried in this order.
DEFAULT_MIRRORS: tuple[str, ...] = (
    "https://www.openslr.org/resources/12",
    "https://us.openslr.org/resources/12",
    "https://openslr.elda.org/resources/12",
    "https://openslr.magicdatatech.com/resources/12",
)
_CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A download failed on every mirror after all retries."""


class ChecksumError(DownloadError):
    """A downloaded file does not have the expected md5."""


def md5sum(path: str | Path, chunk_size: int = _CHUNK) -> str:
    """Hex md5 of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


class _Permanent(Exception):
    """A failure that retrying the same URL will not fix (e.g. HTTP 404)."""


def _open(url: str, offset: int, timeout: float):
    """Open ``url`` asking for bytes from ``offset``; returns (response, resumed: bool, total or None)."""
    request = urllib.request.Request(url, headers={"User-Agent": "ds2-prepare/1.0"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # nothing left to send: the .part may already be complete
            return None, True, offset
        if 400 <= err.code < 500 and err.code not in (408, 429):
            raise _Permanent(f"HTTP {err.code} {err.reason}") from None
        raise
    length = response.headers.get("Content-Length")
    if response.status == 206:
        match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
        if not match or int(match.group(1)) != offset:
            response.close()
            raise _Permanent(f"server answered Range {offset}- with Content-Range "
                             f"{response.headers.get('Content-Range')!r}")
        total = int(match.group(2)) if match.group(2) != "*" else None
        return response, True, total
    return response, False, int(length) if length else None


def _fetch_once(url: str, part: Path, timeout: float, progress: bool) -> None:
    """Append the rest of ``url`` to ``part`` (restarting it if the server ignores Range)."""
    offset = part.stat().st_size if part.exists() else 0
    response, resumed, total = _open(url, offset, timeout)
    if response is None:
        return
    if offset and not resumed:
        logger.info("%s: server ignored the Range request; restarting from byte 0", url)
        offset = 0
    with response, open(part, "ab" if resumed else "wb") as out, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=part.name.removesuffix(".part"), disable=not progress, leave=False) as bar:
        for block in iter(lambda: response.read(_CHUNK), b""):
            out.write(block)
            bar.update(len(block))
    size = part.stat().st_size
    if total is not None and size != total:
        raise urllib.error.URLError(f"connection closed at byte {size} of {total}")


def _verify(part: Path, dest: Path, expected_md5: str | None, url: str) -> Path:
    if expected_md5:
        actual = md5sum(part)
        if actual != expected_md5.lower():
            part.unlink(missing_ok=True)
            raise ChecksumError(f"{url}: md5 {actual} does not match the expected {expected_md5}; "
                                f"the partial file was deleted, run again to download it afresh")
    part.replace(dest)
    return dest


def download_file(urls: str | Sequence[str], dest: str | Path, expected_md5: str | None = None,
                  retries: int = 5, timeout: float = 60.0, backoff: float = 2.0,
                  progress: bool = True) -> Path:
    """Download the first URL that works to ``dest``, resuming ``dest.part``; returns ``dest``.

    An existing ``dest`` with the right md5 (or any existing ``dest`` when no md5 is given) is kept.
    Each URL is tried ``retries`` times (sleeping ``backoff * attempt`` s) before the next one.
    """
    urls = [urls] if isinstance(urls, str) else list(urls)
    dest = Path(dest)
    if dest.exists() and (not expected_md5 or md5sum(dest) == expected_md5.lower()):
        logger.info("%s already downloaded", dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures = []
    for url in urls:
        for attempt in range(1, max(1, retries) + 1):
            try:
                _fetch_once(url, part, timeout, progress)
                return _verify(part, dest, expected_md5, url)
            except _Permanent as err:
                failures.append(f"{url}: {err}")
                break
            except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
                failures.append(f"{url} (attempt {attempt}): {err}")
                logger.warning("download of %s failed (attempt %d/%d): %s", url, attempt, retries, err)
                if attempt < retries:
                    time.sleep(backoff * attempt)
    raise DownloadError(f"could not download {dest.name}; the partial file {part} is kept for resuming.\n  "
                        + "\n  ".join(failures))


def download_librispeech(names: Sequence[str], dest_dir: str | Path,
                         mirrors: Sequence[str] = DEFAULT_MIRRORS, **kwargs) -> list[Path]:
    """Download official archives (e.g. ``dev-clean.tar.gz``) into ``dest_dir``, md5-checked."""
    paths = []
    for name in names:
        if name not in LIBRISPEECH_MD5:
            raise ValueError(f"unknown LibriSpeech archive {name!r}; known: {list(LIBRISPEECH_ARCHIVES)}")
        urls = [f"{m.rstrip('/')}/{name}" for m in mirrors]
        paths.append(download_file(urls, Path(dest_dir) / name, LIBRISPEECH_MD5[name], **kwargs))
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m data_prep.download --dest DIR [--files a.tar.gz,b.tar.gz] [--mirror URL ...]``."""
    parser = argparse.ArgumentParser(description="Download LibriSpeech archives (openslr 12) with md5 checks.")
    parser.add_argument("--dest", required=True, help="directory for the .tar.gz archives")
    parser.add_argument("--files", default=",".join(LIBRISPEECH_ARCHIVES), help="comma-separated archive names")
    parser.add_argument("--mirror", action="append", help="base URL (repeatable); default: openslr and mirrors")
    parser.add_argument("--retries", type=int, default=5)
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    names = [n.strip() for n in args.files.split(",") if n.strip()]
    try:
        for path in download_librispeech(names, args.dest, args.mirror or DEFAULT_MIRRORS, retries=args.retries):
            print(path)
    except (DownloadError, ValueError) as err:
        logger.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
