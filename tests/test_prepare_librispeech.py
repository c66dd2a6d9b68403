"""End-to-end LibriSpeech preparation on a tiny real-speech corpus built from the committed clips (tests/data/speech)."""
from __future__ import annotations

import functools
import http.server
import io
import json
import os
import shutil
import tarfile
import threading
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile

from data_prep import download, librispeech
from data_prep.libri import part as libri_part
from data_prep.librispeech import PreparationError, main, prepare_librispeech
from deepspeech2.data.manifest import read_csv_manifest, read_json_manifest, read_transcript

# part -> (speaker, chapter, committed clips); train has one too-short and one too-long utterance.
CORPUS = {
    "dev-clean": (1272, 128104, ["stew", "canoe", "greek"]),
    "test-clean": (1089, 134686, ["no", "stew", "canoe"]),
    "train-clean-100": (19, 198, ["no", "canoe", "greek"]),
}


def make_flac(clip: Path, path: Path, rate: int = 16000, channels: int = 1) -> float:
    """``clip`` as a 16-bit FLAC at ``rate`` Hz with ``channels``; returns its duration (s)."""
    audio, sr = soundfile.read(clip, dtype="float32")
    if rate != sr:
        audio = librosa.resample(audio, orig_sr=sr, target_sr=rate, res_type="soxr_hq")
    if channels > 1:
        audio = np.stack([audio] * channels, axis=1)
    soundfile.write(path, audio, rate, subtype="PCM_16", format="FLAC")
    return len(audio) / rate


def make_tree(root: Path, part: str, speaker: int, chapter: int, clips: list[tuple[Path, str]]) -> dict[str, float]:
    """``root/LibriSpeech/<part>/<spk>/<chapter>/`` with flacs and trans.txt; returns utt -> duration."""
    folder = root / "LibriSpeech" / part / str(speaker) / str(chapter)
    folder.mkdir(parents=True)
    durations, lines = {}, []
    for i, (clip, text) in enumerate(clips):
        utt = f"{speaker}-{chapter}-{i:04d}"
        shutil.copyfile(clip, folder / f"{utt}.flac")
        durations[utt] = soundfile.info(clip).duration
        lines.append(f"{utt} {text}\n")
    (folder / f"{speaker}-{chapter}.trans.txt").write_text("".join(lines))
    return durations


@pytest.fixture(scope="session")
def corpus(tmp_path_factory, speech_clips):
    """Official-looking ``<part>.tar.gz`` archives; returns (archive dir, {utt: (duration, text)})."""
    work = tmp_path_factory.mktemp("librispeech_src")
    archives = work / "archives"
    archives.mkdir()
    info = {}
    for part, (speaker, chapter, names) in CORPUS.items():
        tree = work / part
        clips = [speech_clips[name] for name in names]
        durations = make_tree(tree, part, speaker, chapter, clips)
        (tree / "LibriSpeech" / "README.TXT").write_text("LibriSpeech (synthetic test copy)\n")
        info.update({utt: (d, clips[int(utt[-4:])][1]) for utt, d in durations.items()})
        with tarfile.open(archives / f"{part}.tar.gz", "w:gz") as tar:
            tar.add(tree / "LibriSpeech", arcname="LibriSpeech")
    return archives, info


def train_limits(info) -> tuple[float, float]:
    """min/max duration that keep exactly the middle train utterance."""
    short, mid, long = sorted(d for utt, (d, _) in info.items() if utt.startswith("19-198-"))
    assert short < 1.0 < mid < long, "the committed clips changed; adjust CORPUS"
    return 1.0, (mid + long) / 2


@pytest.fixture(scope="session")
def prepared(corpus, tmp_path_factory):
    archives, info = corpus
    out = tmp_path_factory.mktemp("prepared")
    lo, hi = train_limits(info)
    summary = prepare_librispeech(out, archives, min_duration=lo, max_duration=hi)
    return out, summary


def test_outputs_and_manifests(prepared, corpus):
    out, summary = prepared
    _, info = corpus
    assert sorted(summary["splits"]) == ["test_clean", "train", "val"]
    assert not (out / "libri_test_other_manifest.json").exists()  # no input for it
    assert {k: v["utterances"] for k, v in summary["splits"].items()} == {"train": 1, "val": 3, "test_clean": 3}
    assert summary["splits"]["train"]["filtered"] == {"too_short": 1, "too_long": 1}
    assert summary["skipped"] == {} and summary["files"]["converted"] == 9
    assert json.loads((out / "prepare_summary.json").read_text()) == summary
    assert not (out / ".extract").exists()
    for split in ("train", "val", "test_clean"):
        from_json = read_json_manifest(out / f"libri_{split}_manifest.json")
        from_csv = read_csv_manifest(out / f"libri_{split}_manifest.csv")
        assert from_json == from_csv and from_json
        manifest = json.loads((out / f"libri_{split}_manifest.json").read_text())
        assert manifest["root_path"] == str(out / split)
        assert all(s["wav_path"].startswith("wav/") and s["transcript_path"].startswith("txt/")
                   for s in manifest["samples"])
        durations = []
        for sample in from_csv:
            assert sample.wav_path.is_absolute() and sample.wav_path.parent == out / split / "wav"
            sf_info = soundfile.info(sample.wav_path)
            assert (sf_info.samplerate, sf_info.channels, sf_info.subtype, sf_info.format) == (16000, 1, "PCM_16", "WAV")
            utt = sample.wav_path.stem
            assert read_transcript(sample) == info[utt][1]
            assert sample.transcript_path.read_text() == info[utt][1]  # exact file content, no newline
            assert sf_info.duration == pytest.approx(info[utt][0], abs=1e-4)
            durations.append(sf_info.duration)
        assert durations == sorted(durations)


def test_wav_is_the_flac_sample_for_sample(prepared, corpus, tmp_path):
    out, _ = prepared
    archives, _ = corpus
    with tarfile.open(archives / "dev-clean.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    flac = next((tmp_path / "LibriSpeech" / "dev-clean").rglob("*.flac"))
    wav = out / "val" / "wav" / (flac.stem + ".wav")
    assert np.array_equal(soundfile.read(flac, dtype="int16")[0], soundfile.read(wav, dtype="int16")[0])


def test_rerun_is_a_noop_and_resumes_after_a_deleted_wav(corpus, tmp_path, monkeypatch):
    archives, info = corpus
    lo, hi = train_limits(info)
    first = prepare_librispeech(tmp_path, archives, min_duration=lo, max_duration=hi)
    manifests = {p.name: p.read_bytes() for p in tmp_path.glob("libri_*")}
    wav = tmp_path / "val" / "wav" / "1272-128104-0001.wav"
    original, mtime = wav.read_bytes(), wav.stat().st_mtime_ns

    def no_extraction(*args):
        raise AssertionError("a finished archive must not be extracted again")

    monkeypatch.setattr(libri_part, "safe_extract", no_extraction)
    again = prepare_librispeech(tmp_path, archives, min_duration=lo, max_duration=hi)
    assert again["files"] == {"prepared": 9, "converted": 0, "reused": 9}
    assert again["splits"] == first["splits"]
    assert wav.stat().st_mtime_ns == mtime
    assert {p.name: p.read_bytes() for p in tmp_path.glob("libri_*")} == manifests

    monkeypatch.undo()
    wav.unlink()
    resumed = prepare_librispeech(tmp_path, archives, min_duration=lo, max_duration=hi)
    assert resumed["files"] == {"prepared": 9, "converted": 1, "reused": 8}
    assert wav.read_bytes() == original
    assert {p.name: p.read_bytes() for p in tmp_path.glob("libri_*")} == manifests


def test_interrupted_run_resumes(corpus, tmp_path, monkeypatch):
    archives, _ = corpus
    real_convert, calls = libri_part.convert, []

    def dies_on_third_file(task):
        calls.append(task)
        if len(calls) == 3:
            raise KeyboardInterrupt  # like Ctrl-C / a kill in the middle of a split
        return real_convert(task)

    monkeypatch.setattr(libri_part, "convert", dies_on_third_file)
    with pytest.raises(KeyboardInterrupt):
        prepare_librispeech(tmp_path, archives, files_to_use=["dev-clean.tar.gz"])
    assert len(list((tmp_path / "val" / "wav").glob("*.wav"))) == 2
    assert not list((tmp_path / "val").rglob("*.partial"))
    (tmp_path / "val" / "wav" / ".1272-128104-0002.wav.999.0123abcd.partial").write_bytes(b"half a file")  # a kill mid-write
    monkeypatch.undo()
    summary = prepare_librispeech(tmp_path, archives, files_to_use=["dev-clean.tar.gz"])
    assert summary["files"] == {"prepared": 3, "converted": 1, "reused": 2}
    assert not list((tmp_path / "val").rglob("*.partial"))


@pytest.mark.parametrize("damage", ["truncate", "flip_byte", "txt"])
def test_rerun_checks_already_done_outputs_and_reconverts_damaged_ones(corpus, tmp_path, damage):
    archives, _ = corpus
    prepare_librispeech(tmp_path, archives, files_to_use=["dev-clean"])
    wav = tmp_path / "val" / "wav" / "1272-128104-0001.wav"
    txt = tmp_path / "val" / "txt" / "1272-128104-0001.txt"
    original, transcript = wav.read_bytes(), txt.read_text()
    if damage == "truncate":  # a valid, shorter wav: the header still parses
        audio, rate = soundfile.read(wav, dtype="int16")
        soundfile.write(wav, audio[:480], rate, subtype="PCM_16")
    elif damage == "flip_byte":  # same size, different content
        wav.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))
    else:
        txt.write_text("")
    summary = prepare_librispeech(tmp_path, archives, files_to_use=["dev-clean"])
    assert summary["files"] == {"prepared": 3, "converted": 1, "reused": 2}
    assert wav.read_bytes() == original and txt.read_text() == transcript


def test_heldout_archive_is_prepared_when_present_and_never_downloaded(corpus, tmp_path, speech_clips, monkeypatch):
    archives, _ = corpus
    src = tmp_path / "src"
    make_tree(src, "test-heldout", 8900, 890001, [speech_clips["stew"], speech_clips["canoe"]])
    with tarfile.open(archives.parent / "test-heldout.tar.gz", "w:gz") as tar:
        tar.add(src / "LibriSpeech", arcname="LibriSpeech")
    both = tmp_path / "both"
    both.mkdir()
    for name in ("test-clean.tar.gz", "test-heldout.tar.gz"):
        (both / name).symlink_to(archives / name if name != "test-heldout.tar.gz" else archives.parent / name)
    summary = prepare_librispeech(tmp_path / "out", both)
    assert {k: v["utterances"] for k, v in summary["splits"].items()} == {"test_clean": 3, "test_heldout": 2}
    manifest = read_csv_manifest(tmp_path / "out" / "libri_test_heldout_manifest.csv")
    assert read_json_manifest(tmp_path / "out" / "libri_test_heldout_manifest.json") == manifest
    assert {s.wav_path.parent for s in manifest} == {tmp_path / "out" / "test_heldout" / "wav"}

    def no_download(names, *args):  # --download must never look for test-heldout on openslr
        assert "test-heldout.tar.gz" not in names
    monkeypatch.setattr(librispeech, "download_librispeech", no_download)
    plain = prepare_librispeech(tmp_path / "plain", archives, files_to_use=["test-clean"], download=True)
    assert "test_heldout" not in plain["splits"] and not (tmp_path / "plain" / "test_heldout").exists()
    with pytest.raises(FileNotFoundError, match="test-heldout.*ds2-make-corpus"):
        prepare_librispeech(tmp_path / "asked", archives, files_to_use=["test-heldout.tar.gz"], download=True)


def test_target_dir_that_is_not_writable_is_a_one_line_error(corpus, tmp_path, caplog, monkeypatch):
    archives, _ = corpus
    target = Path("/sys/ds2-prepare-test")  # a read-only file system, even for root
    if os.access("/sys", os.W_OK) and not Path("/sys").is_mount():
        pytest.skip("no read-only location to test with")
    assert main(["--target-dir", str(target), "--tarball-dir", str(archives), "--num-workers", "1"]) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and str(target) in errors[0] and "cannot write" in errors[0]


def split_counts(summary: dict) -> dict[str, tuple[int, float]]:
    """split -> (utterances, hours) of a preparation summary (its manifest paths name the target dir)."""
    return {name: (split["utterances"], split["hours"]) for name, split in summary["splits"].items()}


def test_full_disk_is_a_one_line_error_naming_the_file_and_a_rerun_completes(corpus, tmp_path, small_disk, caplog):
    archives, _ = corpus
    source = tmp_path / "src"  # an extracted tree: only wav/txt/records are written to the target
    source.mkdir()
    with tarfile.open(archives / "dev-clean.tar.gz") as tar:
        tar.extractall(source, filter="data")
    reference = prepare_librispeech(tmp_path / "ref", source)
    needed = sum(f.stat().st_size for f in (tmp_path / "ref" / "val").rglob("*") if f.is_file())
    disk, resize = small_disk
    resize(needed // 2)  # room for about half of the outputs
    target = disk / "out"
    assert main(["--target-dir", str(target), "--tarball-dir", str(source), "--num-workers", "1"]) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "No space left on device" in errors[0], errors
    assert str(target) in errors[0] and "free some space" in errors[0] and "run the same command again" in errors[0]
    assert not list(target.rglob("*.partial*"))  # no half-written file is left to be mistaken for an output

    resize(64 << 20)  # space freed: the same command finishes and keeps what was already written
    assert main(["--target-dir", str(target), "--tarball-dir", str(source), "--num-workers", "1"]) == 0
    summary = json.loads((target / "prepare_summary.json").read_text())
    assert split_counts(summary) == split_counts(reference)
    assert 1 <= summary["files"]["reused"] < summary["files"]["prepared"] == reference["files"]["prepared"]
    for wav in (tmp_path / "ref" / "val" / "wav").glob("*.wav"):
        assert (target / "val" / "wav" / wav.name).read_bytes() == wav.read_bytes()


def test_full_disk_while_extracting_names_the_folder(corpus, small_disk, caplog):
    archives, _ = corpus
    disk, resize = small_disk
    resize(16 << 10)  # less than the archive's members
    target = disk / "out"
    assert main(["--target-dir", str(target), "--tarball-dir", str(archives), "--files-to-use", "dev-clean",
                 "--num-workers", "1"]) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "No space left on device" in errors[0] and str(target) in errors[0], errors
    resize(64 << 20)
    assert main(["--target-dir", str(target), "--tarball-dir", str(archives), "--files-to-use", "dev-clean",
                 "--num-workers", "1"]) == 0


def test_archive_without_a_usable_utterance_warns_and_strict_fails(bad_tree, tmp_path, caplog):
    folder = next((bad_tree / "LibriSpeech" / "dev-other").rglob("*.trans.txt")).parent
    for flac in folder.glob("5-6-000[01].flac"):  # the two good ones: nothing usable is left
        flac.write_bytes(b"not a flac at all")
    summary = prepare_librispeech(tmp_path / "out", bad_tree)
    assert summary["empty_inputs"] == ["dev-other"] and summary["splits"]["val"]["utterances"] == 0
    assert "dev-other" in caplog.text and "NO usable utterance" in caplog.text
    assert main(["--target-dir", str(tmp_path / "out"), "--tarball-dir", str(bad_tree), "--strict",
                 "--num-workers", "1"]) == 1


def test_extracted_tree_input_and_parallel_workers(corpus, tmp_path):
    archives, _ = corpus
    source = tmp_path / "src"
    source.mkdir()
    with tarfile.open(archives / "test-clean.tar.gz") as tar:
        tar.extractall(source, filter="data")
    summary = prepare_librispeech(tmp_path / "out", source, num_workers=2)
    assert summary["inputs"] == {"test-clean": {"kind": "tree", "path": str(source / "LibriSpeech" / "test-clean")}}
    assert summary["splits"]["test_clean"]["utterances"] == 3 and summary["files"]["converted"] == 3


def test_resamples_and_downmixes_other_formats(tmp_path, speech_clips):
    folder = tmp_path / "src" / "LibriSpeech" / "dev-other" / "7" / "8"
    folder.mkdir(parents=True)
    clip, text = speech_clips["canoe"]
    duration = make_flac(clip, folder / "7-8-0000.flac", rate=22050, channels=2)
    (folder / "7-8.trans.txt").write_text(f"7-8-0000 {text}\n")
    summary = prepare_librispeech(tmp_path / "out", tmp_path / "src")
    info = soundfile.info(tmp_path / "out" / "val" / "wav" / "7-8-0000.wav")
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert info.duration == pytest.approx(duration, abs=1e-3)
    assert summary["splits"]["val"]["utterances"] == 1


@pytest.fixture()
def bad_tree(corpus, tmp_path):
    """A dev-other tree with two good utterances and one of every kind of bad input."""
    archives, _ = corpus
    with tarfile.open(archives / "dev-clean.tar.gz") as tar:
        tar.extractall(tmp_path / "x", filter="data")
    good = sorted((tmp_path / "x").rglob("*.flac"))
    folder = tmp_path / "src" / "LibriSpeech" / "dev-other" / "5" / "6"
    folder.mkdir(parents=True)
    texts = {}
    for i, name in enumerate(["ok0", "ok1", "corrupt", "truncated", "zero", "oov", "empty", "no_line"]):
        utt = f"5-6-{i:04d}"
        data = good[i % 3].read_bytes()
        data = {"corrupt": data[:100] + bytes(range(256)) * 20, "truncated": data[: len(data) // 2],
                "zero": b""}.get(name, data)
        (folder / f"{utt}.flac").write_bytes(data)
        texts[utt] = {"oov": "CAFÉ NUMBER 42", "empty": ""}.get(name, "SOME WORDS")
    del texts["5-6-0007"]  # a flac without a transcript line
    texts["5-6-0008"] = "A LINE WITHOUT A FLAC"
    (folder / "5-6.trans.txt").write_text("".join(f"{u} {t}\n" for u, t in texts.items()))
    return tmp_path / "src"


EXPECTED_SKIPS = {"corrupt_audio": 2, "empty_audio": 1, "oov_transcript": 1, "empty_transcript": 1,
                  "missing_transcript": 1, "missing_audio": 1}


def test_bad_inputs_are_reported_and_counted(bad_tree, tmp_path, caplog):
    summary = prepare_librispeech(tmp_path / "out", bad_tree)
    assert summary["skipped"] == EXPECTED_SKIPS
    assert summary["splits"]["val"]["utterances"] == 2
    reasons = {(Path(s["file"]).name, s["reason"]) for s in summary["skipped_files"]}
    assert {("5-6-0002.flac", "corrupt_audio"), ("5-6-0003.flac", "corrupt_audio"), ("5-6-0004.flac", "empty_audio"),
            ("5-6.trans.txt", "oov_transcript"), ("5-6.trans.txt", "empty_transcript"),
            ("5-6-0007.flac", "missing_transcript"), ("5-6.trans.txt", "missing_audio")} == reasons
    assert "5-6-0003.flac: skipped utterance 5-6-0003 (corrupt_audio)" in caplog.text
    assert "5-6.trans.txt: skipped utterance 5-6-0005 (oov_transcript)" in caplog.text
    assert not list((tmp_path / "out" / "val" / "wav").glob("5-6-000[2-7].wav"))


def test_strict_exits_non_zero_after_the_summary(bad_tree, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(PreparationError) as err:
        prepare_librispeech(out, bad_tree, strict=True)
    assert err.value.summary["skipped"] == EXPECTED_SKIPS
    assert main(["--target-dir", str(out), "--tarball-dir", str(bad_tree), "--strict", "--num-workers", "1"]) == 1
    assert json.loads((out / "prepare_summary.json").read_text())["skipped"] == EXPECTED_SKIPS
    assert (out / "libri_val_manifest.csv").read_text().count("\n") == 2
    assert main(["--target-dir", str(out), "--tarball-dir", str(bad_tree), "--num-workers", "1"]) == 0


def test_bad_inputs_in_an_archive_are_named_by_member_and_remembered(bad_tree, tmp_path):
    archives = tmp_path / "archives"
    archives.mkdir()
    with tarfile.open(archives / "dev-other.tar.gz", "w:gz") as tar:
        tar.add(bad_tree / "LibriSpeech", arcname="LibriSpeech")
    first = prepare_librispeech(tmp_path / "out", archives)
    assert first["skipped"] == EXPECTED_SKIPS
    assert f"{archives / 'dev-other.tar.gz'}:LibriSpeech/dev-other/5/6/5-6-0004.flac" in {
        s["file"] for s in first["skipped_files"]}
    with pytest.raises(PreparationError):  # a re-run that reuses everything still reports (and fails on) them
        prepare_librispeech(tmp_path / "out", archives, strict=True)


def test_malicious_archive_is_refused(tmp_path):
    archives = tmp_path / "archives"
    archives.mkdir()
    with tarfile.open(archives / "dev-clean.tar.gz", "w:gz") as tar:
        for name in ("LibriSpeech/dev-clean/1/2/1-2.trans.txt", "LibriSpeech/../../escaped.txt"):
            member = tarfile.TarInfo(name)
            member.size = 3
            tar.addfile(member, io.BytesIO(b"abc"))
    out = tmp_path / "out"
    assert main(["--target-dir", str(out), "--tarball-dir", str(archives), "--num-workers", "1"]) == 1
    assert not (tmp_path / "escaped.txt").exists() and not (out.parent.parent / "escaped.txt").exists()
    assert not list(out.rglob("*.txt")) and not list(out.glob("libri_*"))


def test_input_selection_errors(corpus, tmp_path):
    archives, _ = corpus
    with pytest.raises(ValueError, match="unknown LibriSpeech part"):
        prepare_librispeech(tmp_path, archives, files_to_use="dev-clean.tar.gz,dev-noisy.tar.gz")
    with pytest.raises(FileNotFoundError, match="test-other"):
        prepare_librispeech(tmp_path, archives, files_to_use=["test-other.tar.gz"])
    with pytest.raises(FileNotFoundError, match="no LibriSpeech input"):
        prepare_librispeech(tmp_path, tmp_path / "empty")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_missing_archive_from_a_mirror(corpus, tmp_path, monkeypatch):
    archives, _ = corpus
    handler = functools.partial(QuietHandler, directory=str(archives))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        monkeypatch.setitem(download.LIBRISPEECH_MD5, "test-clean.tar.gz",
                            download.md5sum(archives / "test-clean.tar.gz"))
        mirror = f"http://127.0.0.1:{server.server_address[1]}"
        summary = prepare_librispeech(tmp_path / "out", tmp_path / "dl", files_to_use=["test-clean"],
                                      download=True, mirrors=[mirror])
    finally:
        server.shutdown()
        server.server_close()
    assert (tmp_path / "dl" / "test-clean.tar.gz").read_bytes() == (archives / "test-clean.tar.gz").read_bytes()
    assert summary["splits"]["test_clean"]["utterances"] == 3
