"""Tests for deepspeech2.decoding.decoders: greedy and prefix beam search against hand-built and brute-force answers."""
from __future__ import annotations

import dataclasses
import inspect
import itertools
import math

import numpy as np
import pytest

from deepspeech2.core.config import EvalConfig
from deepspeech2.data.vocab import Vocab
from deepspeech2.decoding.decoders import (
    beam_search_decode,
    beam_search_nbest,
    greedy_decode,
    greedy_decode_batch,
    greedy_decode_with_frames,
    build_decoder,
    make_decoder,
)
from deepspeech2.decoding.lm import NGramLM, build_arpa

# Exhaustive search: no per-frame pruning and no LM weights (tests that need others pass their own).
SEARCH = {"alpha": 0.0, "beta": 0.0, "cutoff_prob": 1.0, "cutoff_top_n": 1000}
LABELS = ["'"] + [chr(c) for c in range(ord("A"), ord("Z") + 1)] + [" ", "_"]
BLANK = len(LABELS) - 1


def _log_probs(frames: list[str | dict[str, float]], labels=LABELS, peak: float = 0.9) -> np.ndarray:
    """(T, C) log-probs: a str frame puts ``peak`` on that label, a dict gives its labels' probs;
    the remaining mass is spread evenly over the other labels."""
    out = np.empty((len(frames), len(labels)))
    for t, frame in enumerate(frames):
        probs = {frame: peak} if isinstance(frame, str) else frame
        rest = (1.0 - sum(probs.values())) / (len(labels) - len(probs))
        out[t] = [math.log(probs.get(lab, rest)) for lab in labels]
    return out


def _spell(text: str) -> list[str]:
    """Frames spelling ``text`` with a blank after every label (so repeats survive)."""
    return [f for ch in text for f in (ch, "_")]


def _softmax_log(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    logits = rng.normal(size=shape) * scale
    return logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)


def test_greedy_collapses_repeats_and_drops_blanks():
    lp = _log_probs(["A", "A", "_", "A", "B", "B", "_", "_", " ", "C"])
    assert greedy_decode_with_frames(lp, LABELS, BLANK) == ("AAB C", [0, 3, 4, 8, 9])
    assert greedy_decode(lp, LABELS, BLANK, length=5) == "AAB"
    assert greedy_decode(lp, LABELS, BLANK, length=0) == ""


def test_greedy_batch_matches_single():
    rng = np.random.default_rng(0)
    lp = _softmax_log(rng, (4, 30, len(LABELS)), scale=3.0)
    lengths = np.array([30, 12, 0, 29])
    expected = [greedy_decode(x, LABELS, BLANK, length=int(n)) for x, n in zip(lp, lengths)]
    assert greedy_decode_batch(lp, lengths, LABELS, BLANK) == expected
    assert make_decoder("greedy", LABELS, BLANK)(lp, lengths) == expected


def test_bad_arguments():
    lp = _log_probs(["A"])
    with pytest.raises(ValueError, match="labels"):
        greedy_decode(lp, LABELS[:-1], BLANK)
    with pytest.raises(ValueError, match="length"):
        greedy_decode(lp, LABELS, BLANK, length=2)
    with pytest.raises(ValueError, match="lengths"):
        greedy_decode_batch(lp[None], [2], LABELS, BLANK)
    with pytest.raises(ValueError, match="beam_width"):
        beam_search_decode(lp, LABELS, BLANK, **{**SEARCH, "beam_width": 0})
    with pytest.raises(ValueError, match="greedy, beam"):
        make_decoder("viterbi", LABELS, BLANK)
    with pytest.raises(ValueError, match="beam_size"):
        make_decoder("beam", LABELS, BLANK, beam_size=4, beam_width=4, **SEARCH)


def test_beam_width_one_equals_greedy_on_peaked_inputs():
    rng = np.random.default_rng(1)
    for _ in range(5):
        frames = [LABELS[i] for i in rng.integers(0, len(LABELS), size=60)]
        lp = _log_probs(frames, peak=0.97)
        assert beam_search_decode(lp, LABELS, BLANK, beam_width=1, **SEARCH) == greedy_decode(lp, LABELS, BLANK)


def test_beam_finds_the_labelling_greedy_misses():
    # best path is "__" (0.36) but P("a") = 0.4*0.4 + 2*0.4*0.6 = 0.64
    labels = ["a", "_"]
    lp = np.log(np.array([[0.4, 0.6], [0.4, 0.6]]))
    assert greedy_decode(lp, labels, blank=1) == ""
    (text, score), (text2, score2) = beam_search_nbest(lp, labels, blank=1, beam_width=4, **SEARCH)
    assert (text, text2) == ("a", "")
    assert (math.exp(score), math.exp(score2)) == pytest.approx((0.64, 0.36))


@pytest.mark.parametrize("seed", range(6))
def test_beam_search_is_exact_against_brute_force(seed):
    labels, blank = ["a", "b", "_"], 2
    rng = np.random.default_rng(seed)
    frames = 1 + seed % 5
    lp = _softmax_log(rng, (frames, 3))
    totals: dict[str, float] = {}
    for path in itertools.product(range(3), repeat=frames):
        ids = np.array(path)
        text = "".join(labels[i] for i, keep in zip(ids, np.diff(ids, prepend=-1) != 0) if keep and i != blank)
        totals[text] = np.logaddexp(totals.get(text, -np.inf), lp[np.arange(frames), ids].sum())
    nbest = beam_search_nbest(lp, labels, blank, beam_width=10_000, **SEARCH)
    assert nbest[0][0] == max(totals, key=totals.get)
    assert dict(nbest) == pytest.approx(totals)


def test_beam_ignores_padded_frames_and_prunes():
    lp = _log_probs(_spell("HI") + ["Z"] * 5)
    assert beam_search_decode(lp, LABELS, BLANK, beam_width=8, length=4, **SEARCH) == "HI"
    assert beam_search_decode(lp, LABELS, BLANK, **{**SEARCH, "beam_width": 8, "cutoff_prob": 0.5, "cutoff_top_n": 1}) == "HIZ"
    batch = make_decoder("beam", LABELS, BLANK, beam_width=4, **SEARCH)(np.stack([lp, lp]), np.array([4, 7]))
    assert batch == ["HI", "HIZ"]


@pytest.fixture(scope="module")
def cat_lm(tmp_path_factory) -> NGramLM:
    path = tmp_path_factory.mktemp("lm") / "cat.arpa"
    build_arpa(["THE CAT SAT", "THE CAT", "A CAT SAT ON THE MAT", "THE DOG SAT"], 2, path)
    return NGramLM.from_arpa(path)


@pytest.mark.parametrize("lexicon, oov_penalty", [(False, math.inf), (True, math.inf), (True, 2.0)])
def test_frames_where_pruning_keeps_only_blank_take_a_short_path_to_the_same_beams(
        cat_lm, monkeypatch, lexicon, oov_penalty):
    """A frame whose cutoff_prob keeps blank alone grows no prefix: ``_stay`` must leave the same n-best,
    scores included, as the full step run on that frame."""
    from deepspeech2.decoding import decoders

    text = "THE CAT SAT ON THE MAT"
    frames = [f for i, ch in enumerate(text) for f in [{ch: 0.6, "_": 0.3}] + [{"_": 0.995}] * (1 + i % 3)]
    lp = _log_probs(frames)
    options = dict(beam_width=6, alpha=0.8, beta=1.0, cutoff_prob=0.99, cutoff_top_n=8, lm=cat_lm,
                   lexicon=lexicon, oov_penalty=oov_penalty)
    short = beam_search_nbest(lp, LABELS, BLANK, **options)
    full_step, calls = decoders._step, []

    def stay_by_full_step(beams, row, tree, blank):
        calls.append(len(beams.nodes))
        return full_step(beams, row, np.zeros(len(row), dtype=bool), tree, blank, options["beam_width"])

    monkeypatch.setattr(decoders, "_stay", stay_by_full_step)
    full = beam_search_nbest(lp, LABELS, BLANK, **options)
    assert len(calls) == sum(1 + i % 3 for i in range(len(text))) and max(calls) > 1
    assert sorted(short) == sorted(full)
    assert short[0][0] == text


@pytest.mark.parametrize("tail", ["", " SAT"])
def test_lm_prefers_in_vocabulary_words(cat_lm, tail):
    # acoustics slightly prefer the out-of-vocabulary "CAB" over "CAT"
    frames = _spell("THE CA") + [{"B": 0.55, "T": 0.44}, "_"] + _spell(tail)
    lp = _log_probs(frames)
    assert beam_search_decode(lp, LABELS, BLANK, beam_width=16, **SEARCH) == f"THE CAB{tail}"
    assert beam_search_decode(lp, LABELS, BLANK, beam_width=16, lm=cat_lm, **{**SEARCH, "alpha": 1.0}) == f"THE CAT{tail}"
    decode = make_decoder("beam", LABELS, BLANK, beam_width=16, lm=cat_lm, **{**SEARCH, "alpha": 1.0})
    assert decode(lp[None]) == [f"THE CAT{tail}"]


def test_lm_scores_are_added_per_word(cat_lm):
    lp = _log_probs(_spell("THE CAT"), peak=0.999)
    (text, with_lm), = beam_search_nbest(lp, LABELS, BLANK, beam_width=1, lm=cat_lm, **{**SEARCH, "alpha": 0.5, "beta": 2.0})
    (_, without_lm), = beam_search_nbest(lp, LABELS, BLANK, beam_width=1, **SEARCH)
    expected = 0.5 * (cat_lm.score("THE", ("<s>",)) + cat_lm.score("CAT", ("<s>", "THE"))) + 2.0 * 2
    assert text == "THE CAT"
    assert with_lm - without_lm == pytest.approx(expected)


def test_lm_needs_a_space_label(cat_lm):
    with pytest.raises(ValueError, match="space label"):
        beam_search_decode(_log_probs(["A"]), LABELS, BLANK, beam_width=4, lm=cat_lm, space_label="|", **SEARCH)


def test_beam_options_have_one_home_the_eval_config():
    params = inspect.signature(beam_search_nbest).parameters
    for name in ("beam_width", "alpha", "beta", "cutoff_prob", "cutoff_top_n"):
        assert params[name].default is inspect.Parameter.empty, name
    with pytest.raises(ValueError, match="missing beam options.*cutoff_prob"):
        make_decoder("beam", LABELS, BLANK, beam_width=4, alpha=0.5, beta=1.0, cutoff_top_n=5)


def test_build_decoder_uses_the_configured_pruning():
    # "a" is best overall (P 0.64), but the top label of each frame is the blank: top-1 pruning finds ""
    vocab = Vocab(labels=("a", "_"), blank_symbol="_")
    lp = np.log(np.array([[[0.4, 0.6], [0.4, 0.6]]]))
    wide = EvalConfig(decoder="beam", beam_width=4, cutoff_prob=1.0, cutoff_top_n=2)
    assert build_decoder(wide, vocab)(lp) == ["a"]
    narrow = EvalConfig(decoder="beam", beam_width=4, cutoff_prob=1.0, cutoff_top_n=1)
    assert build_decoder(narrow, vocab)(lp) == [""]


def test_lexicon_spells_only_lm_words_even_against_strong_acoustics(cat_lm):
    # the acoustics clearly say "CAB" (0.8 vs 0.15): a weak LM weight keeps it, the lexicon cannot
    frames = _spell("THE CA") + [{"B": 0.8, "T": 0.15}, "_"] + _spell(" SAT")
    lp = _log_probs(frames)
    options = {**SEARCH, "alpha": 0.1}
    assert beam_search_decode(lp, LABELS, BLANK, beam_width=16, lm=cat_lm, **options) == "THE CAB SAT"
    text = beam_search_decode(lp, LABELS, BLANK, beam_width=16, lm=cat_lm, lexicon=True, **options)
    assert text == "THE CAT SAT"
    assert set(text.split()) <= cat_lm.words


def test_lexicon_drops_unfinished_words_and_falls_back_when_nothing_is_finished(cat_lm):
    # "THE CA": the last word is only a prefix of CAT, so every ranked result is made of whole words
    lp = _log_probs(_spell("THE CA"), peak=0.95)
    nbest = beam_search_nbest(lp, LABELS, BLANK, beam_width=16, lm=cat_lm, lexicon=True, **SEARCH)
    finite = [text for text, score in nbest if math.isfinite(score)]
    assert finite and all(set(text.split()) <= cat_lm.words for text in finite)
    assert all(not math.isfinite(score) for text, score in nbest if not set(text.split()) <= cat_lm.words)
    # no lexicon word fits the frames at all: the best prefix is still returned, and it spells no non-word
    lp = _log_probs(_spell("ZZ"), peak=0.99)
    text = beam_search_decode(lp, LABELS, BLANK, beam_width=4, lm=cat_lm, lexicon=True, **SEARCH)
    assert text in cat_lm.word_prefixes and "Z" not in text


def test_lexicon_is_a_config_key_of_the_beam_decoder(cat_lm, tmp_path):
    vocab = Vocab(labels=tuple(LABELS), blank_symbol="_")
    path = tmp_path / "cat.arpa"
    build_arpa(["THE CAT SAT", "THE CAT", "A CAT SAT ON THE MAT", "THE DOG SAT"], 2, path)
    frames = _spell("THE CA") + [{"B": 0.8, "T": 0.15}, "_"] + _spell(" SAT")
    cfg = EvalConfig(decoder="beam", beam_width=16, lm_path=str(path), lm_alpha=0.1, lm_beta=0.0)
    lp = _log_probs(frames)[None]
    assert build_decoder(cfg, vocab)(lp) == ["THE CAB SAT"]
    assert build_decoder(dataclasses.replace(cfg, lexicon=True), vocab)(lp) == ["THE CAT SAT"]


def _letters_outside(word: str, lm: NGramLM) -> int:
    """How many of ``word``'s letters the soft lexicon charges."""
    if word in lm.words:
        return 0
    inside = max(i for i in range(len(word) + 1) if word[:i] in lm.word_prefixes)
    return max(len(word) - inside, 1)


@pytest.mark.parametrize("text", ["CAB", "A CA", "ZA T", "CATSAT"])
def test_soft_lexicon_charges_each_out_of_lexicon_word_once(cat_lm, text):
    # with nothing pruned, every prefix scores as without a lexicon minus the penalty per letter outside
    # it: from the one that leaves the lexicon (CA-B, Z-A) on, or one for a mere prefix ending a word
    # (CA); the <unk> score charged when a word leaves the lexicon is its LM score, not an extra
    lp = _log_probs(_spell(text), peak=0.7)
    options = {**SEARCH, "alpha": 0.3, "beta": 0.5, "cutoff_top_n": 3}
    plain = beam_search_nbest(lp, LABELS, BLANK, beam_width=100_000, lm=cat_lm, **options)
    penalty = 2.5
    soft = dict(beam_search_nbest(lp, LABELS, BLANK, beam_width=100_000, lm=cat_lm, lexicon=True,
                                  oov_penalty=penalty, **options))
    plain = [(hyp, score) for hyp, score in plain if "" not in hyp.split(" ")[:-1]]   # no empty words
    assert len(soft) == len(plain) > 20            # the soft lexicon spells no space without a word
    for hyp, score in plain:
        assert soft[hyp] == pytest.approx(score - penalty * sum(_letters_outside(w, cat_lm) for w in hyp.split())), hyp
    assert any(word not in cat_lm.words for hyp, _ in plain for word in hyp.split())


def test_soft_lexicon_lets_strong_acoustics_spell_a_new_word(cat_lm):
    frames = _spell("THE CA") + [{"B": 0.8, "T": 0.15}, "_"] + _spell(" SAT")
    lp = _log_probs(frames)
    options = {**SEARCH, "alpha": 0.1}
    strict = beam_search_decode(lp, LABELS, BLANK, beam_width=16, lm=cat_lm, lexicon=True, **options)
    assert strict == "THE CAT SAT"
    assert beam_search_decode(lp, LABELS, BLANK, beam_width=16, lm=cat_lm, lexicon=True, oov_penalty=math.inf,
                              **options) == strict
    assert beam_search_decode(lp, LABELS, BLANK, beam_width=16, lm=cat_lm, lexicon=True, oov_penalty=0.5,
                              **options) == "THE CAB SAT"          # ln(0.8 / 0.15) = 1.7 > 0.5
    assert beam_search_decode(lp, LABELS, BLANK, beam_width=16, lm=cat_lm, lexicon=True, oov_penalty=3.0,
                              **options) == "THE CAT SAT"
    # the penalty ranks a prefix the moment it leaves the lexicon: a one-prefix beam keeps CAT over
    # the slightly likelier CAB instead of finding out at the word's end
    close = _log_probs(_spell("CA") + [{"B": 0.5, "T": 0.4}, "_"], peak=0.95)
    assert beam_search_decode(close, LABELS, BLANK, beam_width=1, lm=cat_lm, lexicon=True, oov_penalty=1.0,
                              **options) == "CAT"
    with pytest.raises(ValueError, match="oov_penalty"):
        beam_search_decode(lp, LABELS, BLANK, beam_width=16, lm=cat_lm, lexicon=True, oov_penalty=-1.0, **options)
