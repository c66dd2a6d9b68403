"""Error rates per voice: recogs files read back, SPEAKERS.TXT read from real corpus archives."""
from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from deepspeech2.decoding.metrics import read_recogs, score_utterance, write_recogs
from deepspeech2.lab.voices import rates_by_voice, read_speakers, voice_of


def test_recogs_read_back_as_written(tmp_path: Path) -> None:
    results = [score_utterance("1-2-0001", "A CAT SAT", "A CAT SAT ON"), score_utterance("1-2-0000", "HELLO", "")]
    path = tmp_path / "recogs-x.txt"
    write_recogs(path, results)
    assert read_recogs(path) == sorted(results, key=lambda r: r.utt_id)


@pytest.mark.parametrize("text, message", [("1-2-0000:\tref=A\n1-2-0000:\tbad=A\n", r"recogs-x.txt:2: expected"),
                                           ("1-2-0000:\tref=A\n", r"without both ref= and hyp=: \['1-2-0000'\]")])
def test_malformed_recogs_name_the_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "recogs-x.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_recogs(path)


@pytest.mark.parametrize("name, voice", [("flite awb stretch 1.02 warp 0.981", "flite awb"),
                                         ("espeak-ng en-us+m3 170 wpm pitch 40 warp 1.010", "espeak-ng en-us"),
                                         ("espeak-ng en-gb-scotland 150 wpm pitch 55 warp 0.950", "espeak-ng en-gb-scotland"),
                                         ("Sarah Bibbs", "Sarah Bibbs")])
def test_voice_of_groups_synthetic_readers_by_engine_voice(name: str, voice: str) -> None:
    assert voice_of(name) == voice


def test_speakers_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere.tar.gz"):
        read_speakers(tmp_path / "nowhere.tar.gz")
    bad = tmp_path / "SPEAKERS.TXT"
    bad.write_text("; ID | SEX | SUBSET | MINUTES | NAME\n14 | F | train | 25.03\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"SPEAKERS.TXT:2: not a SPEAKERS.TXT row"):
        read_speakers(bad)
    binary = tmp_path / "corrupt.tar.gz"
    binary.write_bytes(bytes(range(128, 256)))
    with pytest.raises(ValueError, match="corrupt.tar.gz: neither a SPEAKERS.TXT"):
        read_speakers(binary)
    archive = tmp_path / "empty.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(bad, arcname="LibriSpeech/README.TXT")
    with pytest.raises(ValueError, match="empty.tar.gz: the archive has no SPEAKERS.TXT"):
        read_speakers(archive)


def test_rates_by_voice_on_a_real_archive(prepared_corpus: Path, tmp_path: Path) -> None:
    """Utterances of one voice transcribed exactly, the others not at all: that voice's CER is 0 and
    every other voice's 100 %, with readers and utterances counted per voice."""
    speakers = read_speakers(prepared_corpus.parent / "tarballs" / "train-clean-100.tar.gz")
    refs = {p.stem: p.read_text(encoding="utf-8").strip() for p in (prepared_corpus / "train" / "txt").glob("*.txt")}
    voices = {utt: voice_of(speakers[utt.split("-")[0]]) for utt in refs}
    assert len(set(voices.values())) >= 2, voices
    perfect = sorted(voices.values())[0]
    recogs = tmp_path / "recogs-train.txt"
    write_recogs(recogs, [score_utterance(utt, ref, ref if voices[utt] == perfect else "") for utt, ref in refs.items()])
    rows = {row.voice: row for row in rates_by_voice(recogs, speakers)}
    assert set(rows) == set(voices.values())
    assert rows[perfect].cer == 0.0 and rows[perfect].wer == 0.0
    assert all(row.cer == 1.0 for voice, row in rows.items() if voice != perfect)
    for voice, row in rows.items():
        utts = [utt for utt in refs if voices[utt] == voice]
        assert row.utterances == len(utts) and row.readers == len({utt.split("-")[0] for utt in utts})


def test_results_print_each_test_sets_voices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``lab.results --corpus`` (the quickstart's last stage) prints a per-voice table for every test set
    with a recogs file and an archive, preferring the beam decode; the others are left out."""
    from deepspeech2.lab.results import main

    exp, corpus = tmp_path / "exp", tmp_path / "corpus"
    (exp / "eval").mkdir(parents=True)
    corpus.mkdir()
    speakers = tmp_path / "SPEAKERS.TXT"
    speakers.write_text("; ID | SEX | SUBSET | MINUTES | NAME\n8901 | M | test-heldout | 1.00 | flite awb stretch 1.00 warp 1.000\n",
                        encoding="utf-8")
    with tarfile.open(corpus / "test-heldout.tar.gz", "w:gz") as tar:
        tar.add(speakers, arcname="LibriSpeech/SPEAKERS.TXT")
    write_recogs(exp / "eval" / "recogs-test_heldout.txt", [score_utterance("8901-890101-0000", "A B", "A")])
    write_recogs(exp / "eval" / "recogs-test_heldout-beam.txt", [score_utterance("8901-890101-0000", "A B", "A B")])
    write_recogs(exp / "eval" / "recogs-test_clean.txt", [score_utterance("7501-750101-0000", "A", "A")])  # no archive
    assert main(["--exp", str(exp), "--corpus", str(corpus)]) == 0
    out = capsys.readouterr().out
    assert "**test_heldout** (beam):" in out and "| flite awb | 1 | 1 | 0.00 | 0.00 |" in out
    assert "test_clean**" not in out


def test_cli_names_a_bad_input_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from deepspeech2.lab.voices import main

    recogs = tmp_path / "recogs-x.txt"
    write_recogs(recogs, [score_utterance("1-2-0000", "A", "A")])
    assert main(["--recogs", str(recogs), "--speakers", str(tmp_path / "missing.tar.gz")]) == 1
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'missing.tar.gz'}: no such file")
