"""deepspeech2.core.files: the one atomic-write helper."""
from pathlib import Path

import pytest

from deepspeech2.core.files import atomic_copy, atomic_path, atomic_write_text, is_partial


def test_write_replaces_whole_file_and_leaves_no_temporaries(tmp_path):
    path = tmp_path / "sub" / "a.txt"
    atomic_write_text(path, "old\n")
    atomic_write_text(path, "new\r\n")
    assert path.read_bytes() == b"new\r\n" and [p.name for p in path.parent.iterdir()] == ["a.txt"]
    assert atomic_copy(path, tmp_path / "b.txt").read_bytes() == b"new\r\n"


def test_a_failing_writer_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.ckpt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(path, suffix=".ckpt") as tmp:
            assert is_partial(tmp) and tmp.name.endswith(".ckpt") and tmp.parent == tmp_path
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.ckpt"]
    assert not is_partial(Path("epoch_1.ckpt"))
