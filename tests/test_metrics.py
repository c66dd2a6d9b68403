"""Tests for deepspeech2.decoding.metrics: exact cases, agreement with jiwer, alignment consistency."""
from __future__ import annotations

import random

import jiwer
import pytest

from deepspeech2.decoding.metrics import (
    align,
    char_errors,
    corpus_cer,
    corpus_wer,
    error_rate,
    error_totals,
    edit_distance,
    error_counts,
    score_utterance,
    word_errors,
    write_errs,
    write_recogs,
    write_wer_summary,
)

WORDS = ["A", "THE", "CAT", "SAT", "ON", "MAT", "DOG", "IT'S", "RAN", "HE"]


def _random_sentence(rng: random.Random, min_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(min_words, 8)))


def _random_pairs(n: int, seed: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    return [_random_sentence(rng, 1) for _ in range(n)], [_random_sentence(rng, 0) for _ in range(n)]


def test_edit_distance_exact():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3
    assert edit_distance(["a", "b"], ["a", "b"]) == 0
    assert edit_distance(["the", "cat", "sat"], ["the", "hat"]) == 2
    assert edit_distance([1, 2, 3], [3, 2, 1]) == 2


def test_edit_distance_many_distinct_tokens():
    ref = [f"w{i}" for i in range(60000)]  # encodings pass the surrogate code points
    hyp = ref[:-1] + ["other"]
    assert edit_distance(ref, hyp) == 1


def test_word_and_char_errors_exact():
    assert word_errors("THE CAT SAT", "THE CAT SAT") == (0, 3)
    assert word_errors("THE CAT SAT", "THE HAT SAT ON") == (2, 3)
    assert word_errors("", "HELLO") == (1, 0)
    # CER ignores spaces: a split word costs nothing, reference length excludes spaces
    assert char_errors("THE CAT", "THECAT") == (0, 6)
    assert char_errors("THE CAT", "THE HAT") == (1, 6)


def test_corpus_rates_exact():
    refs = ["THE CAT SAT", "A DOG"]
    hyps = ["THE CAT", "A DOG RAN"]
    assert corpus_wer(refs, hyps) == pytest.approx(2 / 5)
    assert corpus_cer(refs, hyps) == pytest.approx((3 + 3) / (9 + 4))
    assert corpus_wer(["", "A B"], ["X", "A B"]) == pytest.approx(1 / 2)  # empty ref: an insertion


def test_corpus_rates_bad_arguments():
    with pytest.raises(ValueError, match="no tokens"):
        corpus_wer(["", " "], ["A", ""])
    with pytest.raises(ValueError, match="2 references but 1"):
        corpus_cer(["A", "B"], ["A"])


def test_wer_matches_jiwer():
    refs, hyps = _random_pairs(250, seed=0)
    assert corpus_wer(refs, hyps) == pytest.approx(jiwer.wer(refs, hyps), abs=1e-12)
    for ref, hyp in zip(refs[:50], hyps[:50]):
        edits, n = word_errors(ref, hyp)
        assert edits / n == pytest.approx(jiwer.wer(ref, hyp), abs=1e-12)


def test_cer_matches_jiwer_without_spaces():
    refs, hyps = _random_pairs(250, seed=1)
    strip = [r.replace(" ", "") for r in refs], [h.replace(" ", "") for h in hyps]
    assert corpus_cer(refs, hyps) == pytest.approx(jiwer.cer(*strip), abs=1e-12)
    for ref, hyp in zip(*strip):
        edits, n = char_errors(ref, hyp)
        assert edits / n == pytest.approx(jiwer.cer(ref, hyp), abs=1e-12)


def test_align_reconstructs_and_counts_edits():
    refs, hyps = _random_pairs(200, seed=2)
    for ref, hyp in zip(refs, hyps):
        r, h = ref.split(), hyp.split()
        ali = align(r, h)
        assert [x for _, x, _ in ali if x is not None] == r
        assert [y for _, _, y in ali if y is not None] == h
        assert sum(op != "cor" for op, _, _ in ali) == edit_distance(r, h)
        for op, x, y in ali:
            assert (op == "cor") == (x == y)
            assert (op == "ins") == (x is None) and (op == "del") == (y is None)


def test_align_exact():
    assert align("THE CAT SAT".split(), "THE HAT SAT ON".split()) == [
        ("cor", "THE", "THE"), ("sub", "CAT", "HAT"), ("cor", "SAT", "SAT"), ("ins", None, "ON")]
    assert align(["A", "B"], []) == [("del", "A", None), ("del", "B", None)]


def test_error_counts_and_files(tmp_path):
    results = [score_utterance("u2", "THE CAT SAT", "THE HAT SAT ON"),
               score_utterance("u1", "A CAT", "CAT")]
    counts = error_counts(results)
    assert counts.substitutions == {("CAT", "HAT"): 1}
    assert counts.insertions == {"ON": 1} and counts.deletions == {"A": 1}
    assert counts.correct == {"THE": 1, "SAT": 1, "CAT": 1}

    write_recogs(tmp_path / "recogs.txt", results)
    assert (tmp_path / "recogs.txt").read_text().splitlines() == [
        "u1:\tref=A CAT", "u1:\thyp=CAT", "u2:\tref=THE CAT SAT", "u2:\thyp=THE HAT SAT ON"]
    write_errs(tmp_path / "errs.txt", results)
    errs = (tmp_path / "errs.txt").read_text()
    assert "%WER 60.00 [ 3 / 5 ]" in errs
    assert "u2:\tTHE (CAT->HAT) SAT (*->ON)" in errs and "u1:\t(A->*) CAT" in errs
    assert "1\tCAT -> HAT" in errs
    write_wer_summary(tmp_path / "summary.txt", results)
    summary = (tmp_path / "summary.txt").read_text()
    assert "%WER 60.00 [ 3 / 5 ]" in summary and "%CER 30.77 [ 4 / 13 ]" in summary


def test_one_wer_cer_for_corpus_rates_files_and_evaluator_summary(tmp_path):
    from deepspeech2.decoding.evaluator import EvalResult

    refs, hyps = ["THE CAT SAT", "A CAT", "DOG"], ["THE HAT SAT ON", "CAT", "DOG"]
    results = [score_utterance(f"u{i}", r, h) for i, (r, h) in enumerate(zip(refs, hyps))]
    totals = error_totals(results)
    assert (totals.utterances, totals.word_edits, totals.ref_words) == (3, 3, 6)
    assert totals.wer == corpus_wer(refs, hyps) == pytest.approx(3 / 6)
    assert totals.cer == corpus_cer(refs, hyps) == pytest.approx(4 / 16)
    summary = EvalResult(results, None, audio_seconds=2.0, wall_seconds=1.0).summary()
    assert (summary["wer"], summary["cer"], summary["ref_words"]) == (totals.wer, totals.cer, 6)
    with pytest.raises(ValueError, match="undefined"):
        error_rate(3, 0)
    assert error_totals([]).utterances == 0
