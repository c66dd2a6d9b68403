"""Manifest reading/writing in deepspeech.pytorch's V3 JSON and V2.1 CSV formats."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepspeech2.data.manifest import (
    ManifestError, Sample, read_csv_manifest, read_json_manifest, read_manifest, read_transcript,
    write_csv_manifest, write_json_manifest,
)


def seannaren_v3(root: Path, utts: list[str]) -> str:
    """A V3 manifest exactly as deepspeech.pytorch writes it (``json.dumps`` of the dict)."""
    return json.dumps({"root_path": str(root), "samples": [
        {"wav_path": f"wav/{u}.wav", "transcript_path": f"txt/{u}.txt"} for u in utts]})


def test_reads_seannaren_v3_json(tmp_path):
    path = tmp_path / "libri_val_manifest.json"
    path.write_text(seannaren_v3(tmp_path / "val", ["1272-128104-0000", "1272-128104-0001"]))
    assert read_manifest(path) == [
        Sample(tmp_path / "val/wav/1272-128104-0000.wav", tmp_path / "val/txt/1272-128104-0000.txt"),
        Sample(tmp_path / "val/wav/1272-128104-0001.wav", tmp_path / "val/txt/1272-128104-0001.txt"),
    ]


def test_reads_seannaren_v21_csv_with_blank_lines_and_crlf(tmp_path):
    path = tmp_path / "libri_test_clean_manifest.csv"
    path.write_text("/data/test_clean/wav/a.wav,/data/test_clean/txt/a.txt\r\n\n"
                    "/data/test_clean/wav/b.wav,/data/test_clean/txt/b.txt\n\n", newline="")
    assert read_manifest(path) == [Sample(Path("/data/test_clean/wav/a.wav"), Path("/data/test_clean/txt/a.txt")),
                                   Sample(Path("/data/test_clean/wav/b.wav"), Path("/data/test_clean/txt/b.txt"))]


def test_absolute_entries_and_relative_root_are_accepted(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"root_path": "split", "samples": [
        {"wav_path": "/abs/x.wav", "transcript_path": "txt/x.txt"}]}))
    assert read_json_manifest(path) == [Sample(Path("/abs/x.wav"), tmp_path / "split/txt/x.txt")]


def test_relative_csv_paths_are_relative_to_the_manifest(tmp_path):
    (tmp_path / "m.csv").write_text("wav/x.wav,txt/x.txt\n")
    assert read_csv_manifest(tmp_path / "m.csv") == [Sample(tmp_path / "wav/x.wav", tmp_path / "txt/x.txt")]


@pytest.mark.parametrize("text, message", [
    ('{"root_path": "/r", "samples": [', r"m\.json: line 1, column \d+: invalid JSON"),
    ('{"root_path": "/r",\n "samples": [}', r"m\.json: line 2, column \d+: invalid JSON"),
    ('[1, 2]', r'm\.json: expected an object with "root_path" and "samples"'),
    ('{"samples": []}', r'm\.json: expected an object with "root_path"'),
    ('{"root_path": "/r", "samples": {}}', r'"samples" a list'),
    ('{"root_path": "/r", "samples": [{"wav_path": "a.wav", "transcript_path": "a.txt"}, {"wav_path": "b.wav"}]}',
     r"m\.json: samples\[1\]: missing or empty key\(s\) \['transcript_path'\]"),
    ('{"root_path": "/r", "samples": ["a.wav"]}', r"samples\[0\]: expected an object"),
])
def test_json_errors_name_the_file_and_the_entry(tmp_path, text, message):
    (tmp_path / "m.json").write_text(text)
    with pytest.raises(ManifestError, match=message):
        read_manifest(tmp_path / "m.json")


@pytest.mark.parametrize("text, message", [
    ("/a.wav,/a.txt\n/b.wav\n", r"m\.csv: line 2: expected 2 comma-separated fields 'wav_path,transcript_path', got 1"),
    ("\n/a.wav,/a.txt,/extra\n", r"m\.csv: line 2: expected 2 comma-separated fields .*, got 3"),
    ("/a.wav,\n", r"m\.csv: line 1: empty wav or transcript path"),
])
def test_csv_errors_name_the_file_and_the_line(tmp_path, text, message):
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(ManifestError, match=message):
        read_manifest(tmp_path / "m.csv")


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(ManifestError, match=r"nope\.csv: manifest file does not exist"):
        read_manifest(tmp_path / "nope.csv")
    (tmp_path / "m.txt").write_text("")
    with pytest.raises(ManifestError, match=r"unknown manifest type '\.txt'"):
        read_manifest(tmp_path / "m.txt")


def test_writers_keep_order_round_trip_and_match_seannaren_bytes(tmp_path):
    root = tmp_path / "val"
    utts = ["b", "a", "c"]  # deliberately not sorted: writers keep the caller's order
    samples = [Sample(root / "wav" / f"{u}.wav", root / "txt" / f"{u}.txt") for u in utts]
    write_json_manifest(tmp_path / "m.json", root, samples)
    write_csv_manifest(tmp_path / "m.csv", samples)
    assert (tmp_path / "m.json").read_text() == seannaren_v3(root, utts)
    assert (tmp_path / "m.csv").read_text() == "".join(f"{root}/wav/{u}.wav,{root}/txt/{u}.txt\n" for u in utts)
    assert read_manifest(tmp_path / "m.json") == samples == read_manifest(tmp_path / "m.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv", "m.json"]  # no temporary files left


def test_json_writer_keeps_paths_outside_root_absolute(tmp_path):
    samples = [Sample(Path("/elsewhere/x.wav"), tmp_path / "txt/x.txt")]
    write_json_manifest(tmp_path / "m.json", tmp_path, samples)
    assert json.loads((tmp_path / "m.json").read_text())["samples"] == [
        {"wav_path": "/elsewhere/x.wav", "transcript_path": "txt/x.txt"}]
    assert read_manifest(tmp_path / "m.json") == samples


def test_csv_writer_refuses_commas_in_paths(tmp_path):
    with pytest.raises(ManifestError, match="comma"):
        write_csv_manifest(tmp_path / "m.csv", [Sample(Path("/a,b.wav"), Path("/a.txt"))])
    assert not list(tmp_path.iterdir())


def test_failed_write_keeps_the_old_manifest(tmp_path, monkeypatch):
    write_csv_manifest(tmp_path / "m.csv", [Sample(Path("/a.wav"), Path("/a.txt"))])

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("deepspeech2.core.files.os.replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_csv_manifest(tmp_path / "m.csv", [Sample(Path("/b.wav"), Path("/b.txt"))])
    assert (tmp_path / "m.csv").read_text() == "/a.wav,/a.txt\n"
    assert [p.name for p in tmp_path.iterdir()] == ["m.csv"]


def test_read_transcript(tmp_path):
    (tmp_path / "t.txt").write_text("HELLO WORLD\n")
    assert read_transcript(Sample(tmp_path / "w.wav", tmp_path / "t.txt")) == "HELLO WORLD"
    with pytest.raises(ManifestError, match="missing.txt: cannot read transcript"):
        read_transcript(Sample(tmp_path / "w.wav", tmp_path / "missing.txt"))
