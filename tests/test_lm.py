"""Tests for deepspeech2.decoding.lm: ARPA parsing, Katz backoff, Witten-Bell building, the CLI."""
from __future__ import annotations

import math
import sys
import types

import pytest

from deepspeech2.decoding.lm import BOS, EOS, UNK, UNKNOWN_WORD_LOG10, NGramLM, build_arpa
from deepspeech2.cli.build_lm import main

LN10 = math.log(10.0)
CORPUS = ["THE CAT SAT", "THE CAT RAN", "A DOG SAT ON THE MAT", "THE DOG RAN", "", "A CAT"]

HAND_ARPA = """
some header text that is ignored

\\data\\
ngram 1=5
ngram 2=3

\\1-grams:
-99\t<s>\t-0.30103
-0.5\tA\t-0.2
-0.6\tB
-0.7\t</s>

-1.0\t<unk>

\\2-grams:
-0.1\t<s> A
-0.2\tA B
-0.3\tB </s>

\\end\\
"""


@pytest.fixture()
def hand_lm(tmp_path) -> NGramLM:
    path = tmp_path / "hand.arpa"
    path.write_text(HAND_ARPA)
    return NGramLM.from_arpa(path)


def test_from_arpa_scores_in_natural_log(hand_lm):
    assert hand_lm.order == 2
    assert hand_lm.score("A", (BOS,)) == pytest.approx(-0.1 * LN10)
    assert hand_lm.score("B", ("A",)) == pytest.approx(-0.2 * LN10)
    assert hand_lm.score("B") == pytest.approx(-0.6 * LN10)


def test_backoff_for_unseen_bigram(hand_lm):
    # P(</s> | A) = bow(A) * P(</s>); P(A | B) = P(A) since B has no backoff weight
    assert hand_lm.score(EOS, ("A",)) == pytest.approx((-0.2 - 0.7) * LN10)
    assert hand_lm.score("A", ("B",)) == pytest.approx(-0.5 * LN10)
    # only the last (order - 1) history words matter
    assert hand_lm.score("B", ("X", "Y", "A")) == pytest.approx(-0.2 * LN10)


def test_unknown_words(hand_lm, tmp_path):
    assert hand_lm.score("ZEBRA", ("A",)) == pytest.approx((-0.2 - 1.0) * LN10)  # bow(A) * P(<unk>)
    no_unk = tmp_path / "no_unk.arpa"
    no_unk.write_text(HAND_ARPA.replace("ngram 1=5", "ngram 1=4").replace("-1.0\t<unk>", ""))
    lm = NGramLM.from_arpa(no_unk)
    assert lm.score("ZEBRA", ("A",)) == pytest.approx(UNKNOWN_WORD_LOG10 * LN10)


def test_sentence_logprob(hand_lm):
    expected = (-0.1 - 0.2 - 0.3) * LN10
    assert hand_lm.sentence_logprob(["A", "B"]) == pytest.approx(expected)
    assert hand_lm.sentence_logprob(["A", "B"], eos=False) == pytest.approx((-0.1 - 0.2) * LN10)


@pytest.mark.parametrize("bad, message", [
    ("-0.5\tA B C D", "a 1-gram line needs 2 or 3 fields"),
    ("-0.5\tA\tnot_a_number", "expected a number, got 'not_a_number'"),
    ("ngram two=3", "expected a number"),
])
def test_malformed_line_names_file_and_line(tmp_path, bad, message):
    lines = HAND_ARPA.splitlines()
    target = "ngram 2=3" if bad.startswith("ngram") else "-0.5\tA\t-0.2"
    lineno = lines.index(target) + 1
    lines[lineno - 1] = bad
    path = tmp_path / "hand.arpa"
    path.write_text("\n".join(lines))
    with pytest.raises(ValueError, match=f"hand.arpa:{lineno}: {message}"):
        NGramLM.from_arpa(path)


def test_count_mismatch_and_missing_end(tmp_path):
    path = tmp_path / "bad.arpa"
    path.write_text(HAND_ARPA.replace("ngram 2=3", "ngram 2=4"))
    with pytest.raises(ValueError, match="declares 4 2-grams"):
        NGramLM.from_arpa(path)
    path.write_text(HAND_ARPA.replace("\\end\\", ""))
    with pytest.raises(ValueError, match="not an ARPA file"):
        NGramLM.from_arpa(path)


@pytest.mark.parametrize("smoothing", ["kneser-ney", "witten-bell"])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_build_arpa_round_trip_is_normalised(tmp_path, order, smoothing):
    path = tmp_path / "lm.arpa"
    build_arpa(CORPUS, order, path, smoothing)
    lm = NGramLM.from_arpa(path)
    assert lm.order == order
    vocab = sorted(lm.vocab - {BOS})
    assert set(vocab) == {"THE", "CAT", "SAT", "RAN", "A", "DOG", "ON", "MAT", EOS, UNK}
    contexts = [()] + [ng for ng in lm.table if len(ng) < order]
    for ctx in contexts:
        total = sum(math.exp(lm.score(w, ctx)) for w in vocab)
        assert total == pytest.approx(1.0, abs=1e-5), ctx
    if order > 1:
        assert lm.score("CAT", ("THE",)) > lm.score("MAT", ("THE",))
        assert lm.sentence_logprob("THE CAT SAT".split()) > lm.sentence_logprob("SAT CAT THE".split())


def test_build_arpa_file_layout(tmp_path):
    path = tmp_path / "lm.arpa"
    build_arpa(CORPUS, 2, path)
    text = path.read_text().splitlines()
    # 8 words + <s> + </s> + <unk>; 17 distinct bigrams in CORPUS
    assert text[:3] == ["\\data\\", "ngram 1=11", "ngram 2=17"]
    bigrams = [line.split("\t")[1] for line in text[text.index("\\2-grams:") + 1:] if "\t" in line]
    assert bigrams == sorted(bigrams, key=str.split)
    assert text[-1] == "\\end\\"


def test_build_arpa_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="order"):
        build_arpa(CORPUS, 0, tmp_path / "x.arpa")
    with pytest.raises(ValueError, match="empty corpus"):
        build_arpa(["", "  "], 2, tmp_path / "x.arpa")


def test_cli_from_text(tmp_path):
    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(CORPUS) + "\n")
    out = tmp_path / "cli.arpa"
    assert main(["--text", str(text), "--order", "2", "--out", str(out)]) == 0
    assert NGramLM.from_arpa(out).order == 2
    with pytest.raises(SystemExit):
        main(["--out", str(out)])


def test_cli_from_manifest(tmp_path, monkeypatch):
    transcripts = []
    for i, sentence in enumerate(CORPUS):
        path = tmp_path / f"utt{i}.txt"
        path.write_text(sentence + "\n")
        transcripts.append(types.SimpleNamespace(wav_path=str(tmp_path / f"utt{i}.wav"), transcript_path=str(path)))
    fake = types.ModuleType("deepspeech2.data.manifest")
    fake.read_manifest = lambda path: transcripts if path == "train.json" else []
    monkeypatch.setitem(sys.modules, "deepspeech2.data.manifest", fake)
    out = tmp_path / "manifest.arpa"
    assert main(["--manifest", "train.json", "--order", "3", "--out", str(out)]) == 0
    assert NGramLM.from_arpa(out).score("CAT", (BOS, "THE")) > math.log(0.3)


def test_gzipped_text_and_arpa_are_read_like_plain_files(tmp_path):
    import gzip

    text = tmp_path / "lm-norm.txt.gz"
    with gzip.open(text, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(CORPUS) + "\n")
    plain, packed = tmp_path / "plain.arpa", tmp_path / "packed.arpa"
    assert main(["--text", str(text), "--order", "2", "--out", str(packed)]) == 0
    build_arpa(CORPUS, 2, plain)
    assert packed.read_bytes() == plain.read_bytes()
    arpa_gz = tmp_path / "lm.arpa.gz"
    arpa_gz.write_bytes(gzip.compress(plain.read_bytes()))
    assert NGramLM.from_arpa(arpa_gz).score("CAT", ("THE",)) == NGramLM.from_arpa(plain).score("CAT", ("THE",))


def test_kneser_ney_unigrams_count_contexts_not_occurrences(tmp_path):
    """FRANCISCO is frequent but only ever follows SAN; CAT is rarer but follows many words: Kneser-Ney's
    unigram (what a new context backs off to) prefers CAT, Witten-Bell's the frequent word."""
    corpus = ["SAN FRANCISCO"] * 6 + ["A CAT", "THE CAT", "MY CAT"]
    scores = {}
    for smoothing in ("kneser-ney", "witten-bell"):
        build_arpa(corpus, 2, tmp_path / f"{smoothing}.arpa", smoothing)
        lm = NGramLM.from_arpa(tmp_path / f"{smoothing}.arpa")
        scores[smoothing] = lm.score("CAT", ("NEW",)) - lm.score("FRANCISCO", ("NEW",))
    assert scores["kneser-ney"] > 0 > scores["witten-bell"]
    with pytest.raises(ValueError, match="unknown smoothing"):
        build_arpa(corpus, 2, tmp_path / "x.arpa", "good-turing")
