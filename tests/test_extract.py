"""safe_extract refuses every kind of malicious member before writing anything."""
from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from data_prep.extract import ArchiveError, UnsafeArchiveError, safe_extract


def member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"data", linkname: str = "") -> tuple:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, (io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def make_tar(path: Path, members: list[tuple]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, data)
    return path


@pytest.fixture()
def sandbox(tmp_path):
    """(archive folder, destination) inside an otherwise empty directory we can watch."""
    (tmp_path / "archives").mkdir()
    return tmp_path / "archives", tmp_path / "sandbox" / "dest"


def all_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_extracts_a_plain_archive(sandbox):
    archives, dest = sandbox
    tar = make_tar(archives / "ok.tar.gz", [member("LibriSpeech/", tarfile.DIRTYPE),
                                            member("LibriSpeech/dev-clean/1/2/1-2-0000.flac", data=b"fLaC"),
                                            member("LibriSpeech/README.TXT", data=b"readme")])
    files = safe_extract(tar, dest)
    assert sorted(files) == [dest / "LibriSpeech/README.TXT", dest / "LibriSpeech/dev-clean/1/2/1-2-0000.flac"]
    assert (dest / "LibriSpeech/dev-clean/1/2/1-2-0000.flac").read_bytes() == b"fLaC"


@pytest.mark.parametrize("bad, problem", [
    (member("/tmp/evil_absolute.txt"), "absolute path"),
    (member("../evil.txt"), r"'\.\.' path component"),
    (member("LibriSpeech/../../evil.txt"), r"'\.\.' path component"),
    (member("LibriSpeech/link", tarfile.SYMTYPE, linkname="/etc"), "link to '/etc'"),
    (member("LibriSpeech/rel_link", tarfile.SYMTYPE, linkname="../../.."), "link to"),
    (member("LibriSpeech/hard", tarfile.LNKTYPE, linkname="LibriSpeech/README.TXT"), "link to"),
    (member("LibriSpeech/null", tarfile.CHRTYPE), "device file"),
    (member("LibriSpeech/disk", tarfile.BLKTYPE), "device file"),
    (member("LibriSpeech/pipe", tarfile.FIFOTYPE), "FIFO"),
])
def test_malicious_members_are_refused_and_nothing_is_written(sandbox, bad, problem):
    archives, dest = sandbox
    # a harmless member first: validation must happen before anything is extracted
    tar = make_tar(archives / "evil.tar.gz", [member("LibriSpeech/README.TXT"), bad])
    before = all_files(dest.parent.parent)
    with pytest.raises(UnsafeArchiveError, match=problem) as err:
        safe_extract(tar, dest)
    assert "evil.tar.gz" in str(err.value) and repr(bad[0].name) in str(err.value)
    assert all_files(dest.parent.parent) == before  # nothing inside dest, nothing outside
    assert not Path("/tmp/evil_absolute.txt").exists()


def test_a_symlink_already_in_dest_cannot_be_used_to_escape(sandbox, tmp_path):
    archives, dest = sandbox
    outside = tmp_path / "outside"
    outside.mkdir()
    dest.mkdir(parents=True)
    os.symlink(outside, dest / "LibriSpeech")
    tar = make_tar(archives / "evil.tar.gz", [member("LibriSpeech/dev-clean/x.flac")])
    with pytest.raises(UnsafeArchiveError, match="outside"):
        safe_extract(tar, dest)
    assert not list(outside.iterdir())


def test_truncated_and_corrupt_archives(sandbox):
    archives, dest = sandbox
    good = make_tar(archives / "good.tar.gz", [member(f"LibriSpeech/f{i}", data=os.urandom(4096)) for i in range(20)])
    data = good.read_bytes()
    (archives / "truncated.tar.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArchiveError, match=r"truncated\.tar\.gz: archive is truncated or corrupt"):
        safe_extract(archives / "truncated.tar.gz", dest)
    (archives / "garbage.tar.gz").write_bytes(b"\x1f\x8b" + os.urandom(2000))
    with pytest.raises(ArchiveError, match=r"garbage\.tar\.gz: (not a readable tar archive|archive is truncated)"):
        safe_extract(archives / "garbage.tar.gz", dest)
    with pytest.raises(ArchiveError, match="does not exist"):
        safe_extract(archives / "missing.tar.gz", dest)
    assert not dest.exists()
