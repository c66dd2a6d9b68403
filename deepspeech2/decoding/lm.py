"""Word n-gram language model: read/score ARPA files (Katz backoff) and build one from transcripts.

Scores are natural logs: ARPA stores log10, which ``from_arpa`` multiplies by ln(10).
"""
from __future__ import annotations

import functools
import logging
import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable, Iterable, Sequence

from deepspeech2.core.files import open_text

__all__ = ["BOS", "EOS", "UNK", "UNKNOWN_WORD_LOG10", "SMOOTHINGS", "NGramLM", "build_arpa"]

logger = logging.getLogger(__name__)

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
# log10 probability of a word the LM has never seen when the ARPA file has no <unk> entry
# (1e-10, far below any estimated probability, but finite so beams keep their order).
UNKNOWN_WORD_LOG10 = -10.0
# log10 probability written for <s>, which is never predicted (the ARPA convention).
_BOS_LOG10 = -99.0
_LN10 = math.log(10.0)


class NGramLM:
    """A backoff n-gram LM: ``table[ngram] = (ln prob, ln backoff)`` for n-grams up to ``order``."""

    def __init__(self, table: dict[tuple[str, ...], tuple[float, float]], order: int) -> None:
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        self.table = table
        self.order = order
        self.vocab = frozenset(ng[0] for ng in table if len(ng) == 1)
        self.unk_logprob = table[(UNK,)][0] if (UNK,) in table else UNKNOWN_WORD_LOG10 * _LN10

    @classmethod
    def from_arpa(cls, path: str | Path) -> "NGramLM":
        """Read a standard ARPA file (log10 probabilities and optional backoff weights); ``.arpa.gz``
        too, e.g. openslr's LibriSpeech ``3-gram.pruned.1e-7.arpa.gz``."""
        with open_text(path) as fh:
            table, order = _parse_arpa(fh, str(path))
        return cls(table, order)

    @functools.cached_property
    def words(self) -> frozenset[str]:
        """The LM's real words: its vocabulary without the sentence markers and <unk>."""
        return self.vocab - {BOS, EOS, UNK}

    @functools.cached_property
    def word_prefixes(self) -> frozenset[str]:
        """Every prefix of every word (with "" and the words themselves): the lexicon as a prefix set."""
        return frozenset(word[:i] for word in self.words for i in range(len(word) + 1))

    @functools.cached_property
    def next_letters(self) -> dict[str, frozenset[str]]:
        """Each proper prefix of a word → the letters that continue it towards some word."""
        following: dict[str, set[str]] = {}
        for word in self.words:
            for i in range(len(word)):
                following.setdefault(word[:i], set()).add(word[i])
        return {prefix: frozenset(letters) for prefix, letters in following.items()}

    def _map(self, word: str) -> str:
        return word if word in self.vocab else UNK

    def score(self, word: str, history: Sequence[str] = ()) -> float:
        """ln P(word | history) with Katz backoff; only the last ``order - 1`` history words count.

        Out-of-vocabulary words (history or predicted) map to <unk>; if the LM has no <unk>, an
        unknown predicted word scores ``UNKNOWN_WORD_LOG10`` (converted to ln). The caller starts
        a sentence with history ``(BOS,)`` and may score ``EOS`` at its end.
        """
        word = self._map(word)
        if word not in self.vocab:
            return self.unk_logprob
        recent = tuple(history)[-(self.order - 1):] if self.order > 1 else ()
        context = tuple(self._map(w) for w in recent)
        backoff = 0.0
        for start in range(len(context) + 1):
            ctx = context[start:]
            entry = self.table.get(ctx + (word,))
            if entry is not None:
                return backoff + entry[0]
            ctx_entry = self.table.get(ctx)
            if ctx_entry is not None:
                backoff += ctx_entry[1]
        raise AssertionError("unreachable: every vocabulary word has a unigram")

    def sentence_logprob(self, words: Sequence[str], bos: bool = True, eos: bool = True) -> float:
        """ln P(words), optionally starting from <s> and including P(</s> | last words)."""
        history: list[str] = [BOS] if bos else []
        total = 0.0
        for word in (*words, EOS) if eos else words:
            total += self.score(word, history)
            history.append(word)
        return total


def _parse_float(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{where}: expected a number, got {text!r}") from None


def _parse_arpa(lines: Iterable[str], name: str) -> tuple[dict[tuple[str, ...], tuple[float, float]], int]:
    """Parse ARPA text into a table of natural-log (prob, backoff) and the LM order."""
    expected: dict[int, int] = {}
    table: dict[tuple[str, ...], tuple[float, float]] = {}
    section: int | None = None  # None: before \data\; 0: in \data\; n: in \n-grams:
    ended = False
    for lineno, raw in enumerate(lines, 1):
        line, where = raw.strip(), f"{name}:{lineno}"
        if not line or ended:
            continue
        if line == "\\data\\":
            section = 0
        elif line == "\\end\\":
            ended = True
        elif line.startswith("\\") and line.endswith("-grams:") and section is not None:
            section = int(_parse_float(line[1:-len("-grams:")], where))
            if section not in expected:
                raise ValueError(f"{where}: section {line} is not declared in \\data\\")
        elif section == 0:
            key, _, count = line.partition("=")
            if not key.startswith("ngram ") or not count:
                raise ValueError(f"{where}: expected 'ngram N=count', got {line!r}")
            expected[int(_parse_float(key[6:], where))] = int(_parse_float(count, where))
        elif section:
            fields = line.split()
            if len(fields) not in (section + 1, section + 2):
                raise ValueError(f"{where}: a {section}-gram line needs {section + 1} or {section + 2} "
                                 f"fields, got {line!r}")
            backoff = _parse_float(fields[-1], where) if len(fields) == section + 2 else 0.0
            table[tuple(fields[1:section + 1])] = (_parse_float(fields[0], where) * _LN10, backoff * _LN10)
        # lines before \data\ (comments, SRILM headers) are ignored
    if not ended or not expected:
        raise ValueError(f"{name}: not an ARPA file (missing \\data\\ or \\end\\)")
    found = Counter(len(ng) for ng in table)
    for n, count in expected.items():
        if found[n] != count:
            raise ValueError(f"{name}: \\data\\ declares {count} {n}-grams but the file holds {found[n]}")
    return table, max(expected)


def _count_ngrams(sentences: Iterable[str], order: int) -> list[Counter]:
    """counts[n][ngram] for n = 1..order over <s> w1 .. wk </s> (<s> is never predicted)."""
    counts = [Counter() for _ in range(order + 1)]
    for sentence in sentences:
        words = sentence.split()
        if not words:
            continue
        tokens = [BOS, *words, EOS]
        for i in range(1, len(tokens)):
            for n in range(1, min(order, i + 1) + 1):
                counts[n][tuple(tokens[i - n + 1:i + 1])] += 1
    if not counts[1]:
        raise ValueError("cannot build an LM from an empty corpus")
    return counts


Smoothing = Callable[[Counter, Counter, Counter], tuple[dict, dict]]
FALLBACK_DISCOUNT = 0.5     # Kneser-Ney discount of a level without both singletons and doubletons


def _witten_bell_weights(level: Counter, ctx_total: Counter, ctx_types: Counter) -> tuple[dict, dict]:
    """Witten-Bell: own share c(h,w) / (c(h) + T(h)); the lower order gets T(h) / (c(h) + T(h)),
    where T(h) is the number of distinct words seen after h."""
    own = {ng: c / (ctx_total[ng[:-1]] + ctx_types[ng[:-1]]) for ng, c in level.items()}
    lam = {h: ctx_types[h] / (ctx_total[h] + ctx_types[h]) for h in ctx_total}
    return own, lam


def _kneser_ney_weights(level: Counter, ctx_total: Counter, ctx_types: Counter) -> tuple[dict, dict]:
    """Kneser-Ney: own share (c(h,w) - D) / c(h); the lower order gets D T(h) / c(h), with the
    discount D = n1 / (n1 + 2 n2) of this level's counts of counts (Chen & Goodman)."""
    n1 = sum(1 for c in level.values() if c == 1)
    n2 = sum(1 for c in level.values() if c == 2)
    discount = n1 / (n1 + 2 * n2) if n1 and n2 else FALLBACK_DISCOUNT
    own = {ng: max(c - discount, 0.0) / ctx_total[ng[:-1]] for ng, c in level.items()}
    lam = {h: discount * ctx_types[h] / ctx_total[h] for h in ctx_total}
    return own, lam


def _continuation_counts(counts: list[Counter], order: int) -> list[Counter]:
    """Kneser-Ney's counts: the highest order and n-grams that start with <s> keep their counts;
    every other lower-order n-gram counts the distinct words seen before it."""
    adjusted = [Counter() for _ in range(order + 1)]
    adjusted[order] = counts[order]
    for n in range(1, order):
        for ng in counts[n + 1]:
            adjusted[n][ng[1:]] += 1
        for ng, c in counts[n].items():
            if ng[0] == BOS or ng not in adjusted[n]:
                adjusted[n][ng] = c
    return adjusted


SMOOTHINGS: dict[str, tuple[Smoothing, Callable[[list[Counter], int], list[Counter]]]] = {
    "kneser-ney": (_kneser_ney_weights, _continuation_counts),
    "witten-bell": (_witten_bell_weights, lambda counts, order: counts),
}


def _interpolate(counts: list[Counter], order: int, smoothing: str) -> tuple[dict, dict]:
    """Interpolated probabilities of seen n-grams and backoff weights of contexts.

    P(w|h) = own(h,w) + lam(h) P(w|h') with ``own``/``lam`` from the smoothing; the unigram level
    interpolates with a uniform distribution over the vocabulary (which includes <unk> and </s>).
    Each seen n-gram stores its full interpolated probability, so the backoff weight of h is
    exactly lam(h) and every context sums to one.
    """
    weights, adjust = SMOOTHINGS[smoothing]
    counts = adjust(counts, order)
    vocab = {ng[0] for ng in counts[1]} | {UNK}
    prob: dict[tuple[str, ...], float] = {}
    backoff: dict[tuple[str, ...], float] = {}
    lower: dict[tuple[str, ...], float] = {(w,): 1.0 / len(vocab) for w in vocab}
    for n in range(1, order + 1):
        ctx_total: Counter = Counter()
        ctx_types: Counter = Counter()
        for ng, c in counts[n].items():
            ctx_total[ng[:-1]] += c
            ctx_types[ng[:-1]] += 1
        own, lam = weights(counts[n], ctx_total, ctx_types)
        backoff.update(lam)
        level = {ng: own[ng] + lam[ng[:-1]] * lower[ng[1:] if n > 1 else ng] for ng in counts[n]}
        if n == 1:  # unseen vocabulary words (only <unk>) keep the uniform share
            level.update({(w,): lam[()] / len(vocab) for w in vocab if (w,) not in level})
        prob.update(level)
        lower = level
    backoff.pop((), None)
    return prob, backoff


def build_arpa(sentences: Iterable[str], order: int, path: str | Path, smoothing: str = "kneser-ney") -> None:
    """Train an interpolated n-gram LM (``smoothing``: kneser-ney or witten-bell) on
    whitespace-tokenised sentences; write ARPA.

    Words are used exactly as given (match the case of the decoder's labels). Empty sentences
    are skipped; an empty corpus or ``order < 1`` raises ValueError.
    """
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    if smoothing not in SMOOTHINGS:
        raise ValueError(f"unknown smoothing {smoothing!r}; expected one of {list(SMOOTHINGS)}")
    counts = _count_ngrams(sentences, order)
    prob, backoff = _interpolate(counts, order, smoothing)
    prob[(BOS,)] = 10.0 ** _BOS_LOG10
    by_order: dict[int, list[tuple[str, ...]]] = defaultdict(list)
    for ng in prob:
        by_order[len(ng)].append(ng)
    lines = ["\\data\\"] + [f"ngram {n}={len(by_order[n])}" for n in range(1, order + 1)]
    for n in range(1, order + 1):
        lines += ["", f"\\{n}-grams:"]
        for ng in sorted(by_order[n]):
            log_p = _BOS_LOG10 if ng == (BOS,) else math.log10(prob[ng])
            row = f"{log_p:.7f}\t{' '.join(ng)}"
            if n < order and ng in backoff:
                row += f"\t{math.log10(backoff[ng]):.7f}"
            lines.append(row)
    lines += ["", "\\end\\", ""]
    Path(path).write_text("\n".join(lines), encoding="utf-8")
