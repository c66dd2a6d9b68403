"""Tests of the synthetic LibriSpeech-format corpus maker (data_prep.corpus).

The module-scoped corpus fixture synthesises ~18 s of audio per split twice (jobs=2 and
jobs=1); the whole file runs in well under a minute on two busy cores.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_prep.corpus.make_corpus import main, make_corpus
from data_prep.corpus.metadata import TOP_LEVEL_FILES
from data_prep.corpus.rdata import unserialize
from data_prep.corpus.sources import FAMILY_SOURCES, SOURCES, load_source
from data_prep.corpus.splits import SPLIT_NAMES, SPLITS, parse_split_arg
from data_prep.corpus.synth import EngineMissingError, check_engines
from data_prep.corpus.tarball import ARCHIVE_MTIME, write_tarball
from data_prep.corpus.text import (
    ABBREVIATIONS, TRANSCRIPT_PATTERN, clean_sentence, next_utterance, split_long_sentence, to_transcript)
from data_prep.corpus.voices import SPLIT_COUNT, sample_speakers

HOURS = 0.005
SEED = 7
CORPUS_SPLITS = {"train-clean-100": HOURS, "dev-clean": HOURS, "test-clean": HOURS,
                 "test-other": HOURS}
MEMBER_RE = re.compile(
    r"^LibriSpeech(?:/[A-Z]+\.TXT|/(?P<split>[a-z0-9-]+)(?:/(?P<spk>\d+)(?:/(?P<chap>\d+)"
    r"(?:/(?P=spk)-(?P=chap)(?:-(?P<utt>\d{4})\.flac|\.trans\.txt))?)?)?)?$")
TRANS_LINE_RE = re.compile(r"^\d+-\d+-\d{4} [A-Z' ]+$")
LEAD_SILENCE_SAMPLES = 1600          # 0.1 s: every recording starts with >= 0.15 s of silence
MIN_NOISE_GAIN_DB = 20.0
MAX_UTTERANCE_SECONDS = 30.0


# ----------------------------------------------------------------------------- text
def test_clean_sentence_normalises_like_librispeech() -> None:
    text = clean_sentence('"Mr. Knightley and Mrs. Weston\'s friend, Dr. Perry--at St. '
                          'James\'s; to-morrow!"')
    assert text == "Mister Knightley and Missus Weston's friend, Doctor Perry, at Saint " \
                   "James's, to morrow!"
    assert to_transcript(text) == ("MISTER KNIGHTLEY AND MISSUS WESTON'S FRIEND DOCTOR PERRY "
                                   "AT SAINT JAMES'S TO MORROW")


def test_abbreviations_without_a_period_are_spelled_out() -> None:
    text = clean_sentence("Mr and Mrs Musgrove met Dr Shirley; Mrs. Smith's Mrsa and Mrs.")
    assert text == "Mister and Missus Musgrove met Doctor Shirley, Missus Smith's Mrsa and Missus."


@pytest.mark.parametrize("raw", ["It cost 5 pounds.", "Fish & chips were served.",
                                 "It was VERY odd.", "Sir W. Elliot came.", "By G--, you are late!",
                                 "Caf\u00e9 au lait."])
def test_clean_sentence_drops_digits_symbols_and_caps(raw: str) -> None:
    assert clean_sentence(raw) is None


def test_split_long_sentence_cuts_at_clauses() -> None:
    raw = ", ".join(["one two three four five"] * 12) + "."
    pieces = split_long_sentence(raw, max_words=20)
    assert len(pieces) > 1 and all(len(p.split()) <= 20 for p in pieces)
    assert " ".join(pieces) == raw


def test_next_utterance_respects_gaps_and_limits() -> None:
    sentences = ["a b c.", "d e f.", None, "g h i j.", "k " * 50 + "l.", "m n."]
    assert next_utterance(sentences, 0, 10, 20) == (["a b c.", "d e f."], 2)
    assert next_utterance(sentences, 2, 10, 20) == (["g h i j."], 4)
    assert next_utterance(sentences, 4, 10, 20) == (["m n."], 6)
    assert next_utterance(sentences, 6, 10, 20) == ([], 6)


def test_committed_text_is_clean_and_families_disjoint() -> None:
    family_sentences: dict[str, set[str]] = {family: set() for family in FAMILY_SOURCES}
    for source in SOURCES:
        chapters = load_source(source)
        assert chapters, source.key
        for sentence in (s for c in chapters for s in c.sentences if s is not None):
            assert TRANSCRIPT_PATTERN.match(to_transcript(sentence)), sentence
            assert not ABBREVIATIONS.keys() & set(re.findall(r"[A-Za-z]+", sentence)), sentence
            family_sentences[source.family].add(to_transcript(sentence))
    books = [set(s.key for s in sources) for sources in FAMILY_SOURCES.values()]
    assert sum(map(len, books)) == len(set().union(*books)) == len(SOURCES)
    sentences = list(family_sentences.values())
    assert sum(map(len, sentences)) == len(set().union(*sentences))


# ----------------------------------------------------------------------------- rdata
def _xdr_int(value: int) -> bytes:
    return struct.pack(">i", value)


def _xdr_char(text: str) -> bytes:
    return _xdr_int(9) + _xdr_int(len(text)) + text.encode()


def test_unserialize_named_vectors_with_symbol_reference() -> None:
    header = b"X\n" + _xdr_int(2) + _xdr_int(0x040201) + _xdr_int(0x020300)
    names_tag = _xdr_int(1) + _xdr_char("names")          # SYMSXP, becomes reference 1
    first = (_xdr_int(13 | 1 << 9) + _xdr_int(2) + _xdr_int(4) + _xdr_int(5)   # INTSXP + attr
             + _xdr_int(2 | 1 << 10) + names_tag + _xdr_int(16) + _xdr_int(2)
             + _xdr_char("x") + _xdr_char("y") + _xdr_int(254))
    second = (_xdr_int(16 | 1 << 9) + _xdr_int(1) + _xdr_char("hello")
              + _xdr_int(2 | 1 << 10) + _xdr_int(1 << 8 | 255)                 # REFSXP 1
              + _xdr_int(16) + _xdr_int(1) + _xdr_char("word") + _xdr_int(254))
    value = unserialize(header + _xdr_int(19) + _xdr_int(2) + first + second)
    assert value.value[0].value == [4, 5]
    assert value.value[0].names() == ["x", "y"]
    assert value.value[1].as_dict() == {"word": "hello"}


# ----------------------------------------------------------------------------- arguments
def test_parse_split_arg() -> None:
    assert parse_split_arg("dev-clean:0.2") == ("dev-clean", 0.2)
    for bad in ("dev_clean:1", "dev-clean", "dev-clean:x", "test-other:-1"):
        with pytest.raises(ValueError):
            parse_split_arg(bad)


def test_cli_bad_split_names_valid_splits(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path), "--split", "train-clean-99:1"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert all(name in error for name in SPLIT_NAMES)


def test_full_disk_is_a_one_line_error_and_a_rerun_completes(tmp_path: Path, small_disk,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    reference = make_corpus(tmp_path / "ref", {"dev-clean": HOURS}, seed=SEED, jobs=1)
    archive = tmp_path / "ref" / "dev-clean.tar.gz"
    disk, resize = small_disk
    resize(archive.stat().st_size // 2)
    args = ["--out", str(disk / "out"), "--split", f"dev-clean:{HOURS}", "--seed", str(SEED), "--jobs", "1",
            "--quiet"]
    assert main(args) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "No space left on device" in errors[0] and str(disk / "out") in errors[0], errors
    assert "free some space" in errors[0] and "run the same command again" in errors[0]
    resize(64 << 20)
    assert main(args) == 0
    assert (disk / "out" / "dev-clean.tar.gz").read_bytes() == archive.read_bytes()
    assert reference["splits"]["dev-clean"]["utterances"] > 0


def test_missing_engine_names_debian_package(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EngineMissingError, match="apt-get install.*flite espeak-ng"):
        check_engines()
    with pytest.raises(EngineMissingError):
        make_corpus(tmp_path / "out", {"dev-clean": HOURS})
    assert not (tmp_path / "out").exists()


def test_speakers_are_disjoint_across_splits() -> None:
    keys = [{s.key() for s in sample_speakers(np.random.default_rng(0), 0, 50, slot)}
            for slot in range(SPLIT_COUNT)]
    assert sum(map(len, keys)) == len(set().union(*keys)) == 50 * SPLIT_COUNT
    ranges = sorted((s.first_speaker_id, s.first_speaker_id + s.max_speakers)
                    for s in SPLITS.values())
    assert all(end <= start for (_, end), (start, _) in zip(ranges, ranges[1:]))


def test_heldout_voices_are_never_used_by_the_other_splits() -> None:
    from data_prep.corpus.voices import ESPEAK, FLITE, HELDOUT_ESPEAK_ACCENTS, HELDOUT_FLITE_VOICES

    def voices(speakers):  # engine + voice name (espeak-ng: the accent, whatever the variant)
        return {(s.engine, s.voice.split("+")[0]) for s in speakers}

    heldout_slot = SPLITS["test-heldout"].slot
    heldout = sample_speakers(np.random.default_rng(1), 0, 200, heldout_slot, heldout=True)
    others = [s for spec in SPLITS.values() if not spec.heldout
              for s in sample_speakers(np.random.default_rng(1), 0, 200, spec.slot)]
    assert voices(heldout) == {(FLITE, v) for v in HELDOUT_FLITE_VOICES} | {(ESPEAK, a) for a in HELDOUT_ESPEAK_ACCENTS}
    assert not voices(heldout) & voices(others)
    assert all(s.is_heldout_voice() for s in heldout) and not any(s.is_heldout_voice() for s in others)
    assert [name for name, spec in SPLITS.items() if spec.heldout] == ["test-heldout"]


def test_planning_the_heldout_split_gives_only_heldout_voices_and_other_text() -> None:
    from data_prep.corpus.plan import plan_split
    from data_prep.corpus.sources import load_family

    spec = SPLITS["test-heldout"]
    assert (spec.family, spec.noisy) == (SPLITS["test-clean"].family, False)
    chapters = load_family(spec.family)
    heldout = plan_split(spec, 0.5, SEED, chapters)
    clean = plan_split(SPLITS["test-clean"], 0.5, SEED, chapters)
    assert heldout.speakers and all(s.is_heldout_voice() for s in heldout.speakers)
    assert not any(s.is_heldout_voice() for s in clean.speakers)
    assert {u.transcript for u in heldout.utterances()}.isdisjoint(u.transcript for u in clean.utterances())
    assert parse_split_arg("test-heldout:0.1") == ("test-heldout", 0.1)


# ----------------------------------------------------------------------------- tarball
def test_write_tarball_is_deterministic(tmp_path: Path) -> None:
    tree = tmp_path / "tree" / "LibriSpeech"
    (tree / "b").mkdir(parents=True)
    (tree / "b" / "z.txt").write_text("z")
    (tree / "A.TXT").write_text("a")
    first, second = tmp_path / "1.tar.gz", tmp_path / "2.tar.gz"
    assert write_tarball(tmp_path / "tree", "LibriSpeech", first) == \
        hashlib.md5(first.read_bytes()).hexdigest()
    (tree / "A.TXT").touch()                      # a new mtime must not matter
    write_tarball(tmp_path / "tree", "LibriSpeech", second)
    assert first.read_bytes() == second.read_bytes()
    flags, mtime = struct.unpack("<BI", first.read_bytes()[3:8])
    assert (flags, mtime) == (0, 0)               # no FNAME in the gzip header, mtime 0
    with tarfile.open(first) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["LibriSpeech", "LibriSpeech/A.TXT", "LibriSpeech/b",
                                         "LibriSpeech/b/z.txt"]
    assert {(m.uid, m.gid, m.mtime) for m in members} == {(0, 0, ARCHIVE_MTIME)}
    assert not list(tmp_path.glob("*.partial"))


# ----------------------------------------------------------------------------- corpus
@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A tiny four-split corpus made with two worker processes."""
    out = tmp_path_factory.mktemp("corpus")
    return out, make_corpus(out, CORPUS_SPLITS, seed=SEED, jobs=2)


def _read_split(tarball: Path) -> dict[str, bytes]:
    """Every member of an archive: name -> bytes (directories map to b'')."""
    with tarfile.open(tarball) as tar:
        return {m.name: (tar.extractfile(m).read() if m.isfile() else b"")
                for m in tar.getmembers()}


def test_archive_layout_matches_librispeech(corpus: tuple[Path, dict]) -> None:
    out, _ = corpus
    for split in CORPUS_SPLITS:
        members = _read_split(out / f"{split}.tar.gz")
        assert all(MEMBER_RE.match(name) for name in members), sorted(members)
        assert list(members) == sorted(members)
        assert {f"LibriSpeech/{name}" for name in TOP_LEVEL_FILES} <= set(members)
        assert {MEMBER_RE.match(n)["split"] for n in members} - {None} == {split}
        for name, data in members.items():
            if name.endswith(".trans.txt"):
                folder = name.rsplit("/", 1)[0]
                lines = data.decode().splitlines()
                assert lines and all(TRANS_LINE_RE.match(line) for line in lines)
                ids = [line.split(" ", 1)[0] for line in lines]
                flacs = sorted(n.rsplit("/", 1)[1][:-5] for n in members
                               if n.startswith(folder + "/") and n.endswith(".flac"))
                assert ids == flacs
                assert [int(i[-4:]) for i in ids] == list(range(len(ids)))
            elif name.endswith(".flac"):
                info = sf.info(io.BytesIO(data))
                assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
                assert 1.0 < info.duration < MAX_UTTERANCE_SECONDS


def test_top_level_files_describe_the_split(corpus: tuple[Path, dict]) -> None:
    out, _ = corpus
    members = _read_split(out / "dev-clean.tar.gz")
    speakers = members["LibriSpeech/SPEAKERS.TXT"].decode().splitlines()
    rows = [line for line in speakers if not line.startswith(";")]
    speaker_dirs = {n.split("/")[2] for n in members if n.count("/") == 2}
    assert {row.split("|")[0].strip() for row in rows} == speaker_dirs
    assert all(row.split("|")[2].strip() == "dev-clean" for row in rows)
    chapters = [line for line in members["LibriSpeech/CHAPTERS.TXT"].decode().splitlines()
                if not line.startswith(";")]
    assert chapters and all(len(row.split("|")) == 8 for row in chapters)
    assert "synthetic" in members["LibriSpeech/README.TXT"].decode().lower()


def test_same_seed_gives_identical_archives(corpus: tuple[Path, dict],
                                            tmp_path: Path) -> None:
    out, report = corpus
    again = make_corpus(tmp_path, CORPUS_SPLITS, seed=SEED, jobs=1)
    for split in CORPUS_SPLITS:
        first = hashlib.md5((out / f"{split}.tar.gz").read_bytes()).hexdigest()
        assert first == hashlib.md5((tmp_path / f"{split}.tar.gz").read_bytes()).hexdigest()
        assert first == report["splits"][split]["md5"] == again["splits"][split]["md5"]


def test_speakers_and_text_disjoint_across_splits(corpus: tuple[Path, dict]) -> None:
    out, _ = corpus
    speakers, names, texts = {}, {}, {}
    for split in CORPUS_SPLITS:
        members = _read_split(out / f"{split}.tar.gz")
        rows = [line.split("|") for line in members["LibriSpeech/SPEAKERS.TXT"].decode()
                .splitlines() if not line.startswith(";")]
        speakers[split] = {row[0].strip() for row in rows}
        names[split] = {row[4].strip() for row in rows}
        texts[split] = {line.split(" ", 1)[1] for n, data in members.items()
                        if n.endswith(".trans.txt") for line in data.decode().splitlines()}
    for table in (speakers, names, texts):
        assert sum(map(len, table.values())) == len(set().union(*table.values()))


def _lead_rms(tarball: Path) -> list[float]:
    """RMS of the first 0.1 s (always silence plus noise) of every recording."""
    levels = []
    for name, data in _read_split(tarball).items():
        if name.endswith(".flac"):
            samples, _ = sf.read(io.BytesIO(data))
            levels.append(float(np.sqrt(np.mean(samples[:LEAD_SILENCE_SAMPLES] ** 2))))
    return levels


def test_other_split_is_noisy_and_clean_has_a_floor(corpus: tuple[Path, dict]) -> None:
    out, _ = corpus
    clean, other = _lead_rms(out / "test-clean.tar.gz"), _lead_rms(out / "test-other.tar.gz")
    assert min(clean) > 0                            # never digital silence
    assert 20 * np.log10(min(other) / max(clean)) > MIN_NOISE_GAIN_DB


def test_report_and_rerun_skips_complete_splits(corpus: tuple[Path, dict]) -> None:
    out, report = corpus
    assert (out / "generation_report.json").is_file()
    for split, stats in report["splits"].items():
        assert stats["utterances"] > 0 and stats["hours"] > 0
        assert set(stats["engine_share"]) == {"flite", "espeak-ng"}
        assert stats["duration_seconds"]["max"] < MAX_UTTERANCE_SECONDS
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.tar.gz")}
    rerun = make_corpus(out, {"dev-clean": HOURS}, seed=SEED, jobs=1)
    assert rerun["splits"]["dev-clean"]["skipped"] is True
    assert before == {p.name: p.stat().st_mtime_ns for p in out.glob("*.tar.gz")}
    assert not [p for p in out.iterdir() if p.name.startswith(".") or "partial" in p.name]


def test_minutes_per_speaker_gives_more_voices_and_a_new_archive(tmp_path: Path) -> None:
    """The override changes how many readers share the audio, and the cached archive is redone."""
    from data_prep.corpus.plan import plan_split
    from data_prep.corpus.sources import load_family

    spec = SPLITS["train-clean-100"]
    chapters = load_family(spec.family)
    default = plan_split(spec, 1.0, SEED, chapters)
    many = plan_split(dataclasses.replace(spec, minutes_per_speaker=3.0), 1.0, SEED, chapters)
    assert (len(default.speakers), len(many.speakers)) == (2, 20)      # 60 min / 25 -> 2, / 3 -> 20
    first = make_corpus(tmp_path, {"dev-clean": HOURS}, seed=SEED, jobs=1)["splits"]["dev-clean"]
    again = make_corpus(tmp_path, {"dev-clean": HOURS}, seed=SEED, jobs=1,
                        minutes_per_speaker=0.1)["splits"]["dev-clean"]
    assert again["skipped"] is False and again["fingerprint"] != first["fingerprint"]
    assert again["minutes_per_speaker"] == 0.1 and again["speakers"] > first["speakers"]


def test_max_train_seconds_bounds_training_utterances_only(tmp_path: Path) -> None:
    """Planned training utterances stay within the bound (estimated), the hours are still planned, the
    text is read in the same order; a dev split is untouched, and its cached archive is reused."""
    from data_prep.corpus.plan import plan_split
    from data_prep.corpus.sources import load_family

    spec = dataclasses.replace(SPLITS["train-clean-100"], minutes_per_speaker=1.0)
    chapters = load_family(spec.family)
    free = plan_split(spec, 0.5, SEED, chapters)
    bounded = plan_split(spec, 0.5, SEED, chapters, max_seconds=10.0)
    assert max(u.est_seconds for u in free.utterances()) > 10.0
    assert max(u.est_seconds for u in bounded.utterances()) <= 10.0
    assert sum(u.est_seconds for u in bounded.utterances()) >= 0.5 * 3600
    assert bounded.utterances()[0].transcript.split()[0] == free.utterances()[0].transcript.split()[0]
    first = make_corpus(tmp_path, {"dev-clean": HOURS}, seed=SEED, jobs=1)["splits"]["dev-clean"]
    again = make_corpus(tmp_path, {"dev-clean": HOURS}, seed=SEED, jobs=1,
                        max_train_seconds=10.0)["splits"]["dev-clean"]
    assert again["skipped"] is True and again["fingerprint"] == first["fingerprint"]


@pytest.mark.parametrize("bad", ["nan", "inf", "2", "-5"])
def test_cli_rejects_a_bad_max_train_seconds(tmp_path: Path, bad: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path / "c"), "--split", "train-clean-100:0.1", "--max-train-seconds", bad])
    assert exit_info.value.code == 2 and "--max-train-seconds" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_cli_rejects_a_bad_minutes_per_speaker(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path), "--split", "dev-clean:0.1", "--minutes-per-speaker", "0"])
    assert exit_info.value.code == 2


@pytest.mark.slow
def test_duration_distribution_and_engine_balance(tmp_path: Path) -> None:
    hours = 0.1
    report = make_corpus(tmp_path, {"train-clean-360": hours}, seed=SEED, jobs=2)
    stats = report["splits"]["train-clean-360"]
    assert abs(stats["hours"] - hours) < 0.25 * hours
    durations = stats["duration_seconds"]
    assert 2.0 <= durations["min"] and durations["max"] < MAX_UTTERANCE_SECONDS
    assert 8.0 < durations["median"] < 15.0            # LibriSpeech-like ~11-13 s
    assert abs(stats["engine_share"]["flite"] - 0.5) < 0.15


def test_lm_text_is_train_books_only_and_deterministic(tmp_path: Path) -> None:
    from data_prep.corpus.lm_text import LM_TEXT_NAME, lm_sentences, write_lm_text
    from data_prep.corpus.sources import DEV, TEST, TRAIN, load_family
    from data_prep.corpus.text import TRANSCRIPT_PATTERN, to_transcript

    path, count = write_lm_text(tmp_path)
    assert path.name == LM_TEXT_NAME
    first = path.read_bytes()
    assert write_lm_text(tmp_path)[0].read_bytes() == first          # byte-identical re-run
    import gzip
    lines = gzip.decompress(first).decode("utf-8").splitlines()
    assert len(lines) == count == len(lm_sentences()) > 10_000
    assert all(TRANSCRIPT_PATTERN.match(line) for line in lines)
    held_out = {to_transcript(s) for family in (DEV, TEST) for ch in load_family(family) for s in ch.sentences if s}
    assert not held_out & set(lines)                                  # no dev/test sentence in the LM text
    train = {to_transcript(s) for ch in load_family(TRAIN) for s in ch.sentences if s}
    assert set(lines) == train - {""}


def test_make_corpus_writes_the_lm_text(corpus: tuple[Path, dict]) -> None:
    out, _ = corpus
    assert (out / "librispeech-lm-norm.txt.gz").stat().st_size > 100_000
