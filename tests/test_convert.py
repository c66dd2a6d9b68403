"""JSON <-> CSV manifest converters: exact inverses, order kept, root inferred."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_prep.convert import common_root, csv_to_json, csv_to_json_main, json_to_csv, json_to_csv_main


def v3_text(root: Path, utts: list[str]) -> str:
    return json.dumps({"root_path": str(root), "samples": [
        {"wav_path": f"wav/{u}.wav", "transcript_path": f"txt/{u}.txt"} for u in utts]})


UTTS = ["1089-134686-0002", "1089-134686-0000", "1089-134686-0001"]  # not in name order: order must be kept


def test_json_to_csv_to_json_gives_the_same_json(tmp_path):
    root = tmp_path / "test_clean"
    (tmp_path / "in.json").write_text(v3_text(root, UTTS))
    assert json_to_csv(tmp_path / "in.json", tmp_path / "mid.csv") == 3
    assert (tmp_path / "mid.csv").read_text() == "".join(f"{root}/wav/{u}.wav,{root}/txt/{u}.txt\n" for u in UTTS)
    assert csv_to_json(tmp_path / "mid.csv", tmp_path / "out.json") == 3
    assert (tmp_path / "out.json").read_bytes() == (tmp_path / "in.json").read_bytes()


def test_csv_to_json_to_csv_gives_the_same_bytes(tmp_path):
    root = tmp_path / "val"
    text = "".join(f"{root}/wav/{u}.wav,{root}/txt/{u}.txt\n" for u in UTTS)
    (tmp_path / "in.csv").write_text(text)
    csv_to_json(tmp_path / "in.csv", tmp_path / "mid.json")
    assert json.loads((tmp_path / "mid.json").read_text())["root_path"] == str(root)
    json_to_csv(tmp_path / "mid.json", tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_bytes() == (tmp_path / "in.csv").read_bytes()


def test_explicit_root_and_paths_outside_it(tmp_path):
    (tmp_path / "in.csv").write_text(f"{tmp_path}/a/wav/x.wav,/other/txt/x.txt\n")
    csv_to_json(tmp_path / "in.csv", tmp_path / "out.json", root_path=tmp_path / "a")
    assert json.loads((tmp_path / "out.json").read_text()) == {
        "root_path": str(tmp_path / "a"), "samples": [{"wav_path": "wav/x.wav", "transcript_path": "/other/txt/x.txt"}]}
    json_to_csv(tmp_path / "out.json", tmp_path / "back.csv")
    assert (tmp_path / "back.csv").read_text() == (tmp_path / "in.csv").read_text()


def test_common_root():
    assert common_root(["/d/val/wav/a.wav", "/d/val/txt/a.txt", "/d/val/wav/b.wav"]) == Path("/d/val")
    assert common_root(["/d/x/a.wav", "/d/x/a.txt"]) == Path("/d/x")
    with pytest.raises(ValueError, match="empty manifest"):
        common_root([])


def test_command_line_entry_points(tmp_path, capsys):
    root = tmp_path / "train"
    (tmp_path / "in.json").write_text(v3_text(root, UTTS))
    assert json_to_csv_main([str(tmp_path / "in.json"), str(tmp_path / "out.csv")]) == 0
    assert csv_to_json_main([str(tmp_path / "out.csv"), str(tmp_path / "out.json"), "--root-path", str(root)]) == 0
    assert (tmp_path / "out.json").read_text() == (tmp_path / "in.json").read_text()
    (tmp_path / "bad.csv").write_text("only-one-field\n")
    assert csv_to_json_main([str(tmp_path / "bad.csv"), str(tmp_path / "x.json")]) == 1
    assert not (tmp_path / "x.json").exists()
    assert json_to_csv_main([str(tmp_path / "missing.json"), str(tmp_path / "x.csv")]) == 1


def test_refuses_to_write_over_its_input(tmp_path, caplog):
    manifest = tmp_path / "a.json"
    manifest.write_text(v3_text(tmp_path / "train", UTTS))
    before = manifest.read_bytes()
    (tmp_path / "link.json").symlink_to(manifest)
    for output in (manifest, tmp_path / "." / "a.json", tmp_path / "link.json"):
        assert json_to_csv_main([str(manifest), str(output)]) == 1
    assert manifest.read_bytes() == before
    assert "the output is the input manifest" in caplog.text
    csv = tmp_path / "a.csv"
    json_to_csv(manifest, csv)
    assert csv_to_json_main([str(csv), str(csv)]) == 1


def test_output_that_is_a_directory_is_one_line_error(tmp_path, caplog):
    manifest = tmp_path / "a.json"
    manifest.write_text(v3_text(tmp_path / "train", UTTS))
    (tmp_path / "out").mkdir()
    assert json_to_csv_main([str(manifest), str(tmp_path / "out")]) == 1
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "is a directory" in errors[0].getMessage() and "Traceback" not in caplog.text
    assert list((tmp_path / "out").iterdir()) == []
