"""Edit distance, WER/CER and icefall-style result files (recogs / errs / wer-summary)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Hashable, Iterable, Literal, Sequence

import Levenshtein

__all__ = [
    "AlignOp",
    "Alignment",
    "ErrorCounts",
    "UtteranceResult",
    "edit_distance",
    "align",
    "word_errors",
    "char_errors",
    "ErrorTotals",
    "error_rate",
    "error_totals",
    "corpus_wer",
    "corpus_cer",
    "score_utterance",
    "error_counts",
    "write_recogs",
    "read_recogs",
    "write_errs",
    "write_wer_summary",
]

AlignOp = Literal["cor", "sub", "ins", "del"]
Alignment = list[tuple[AlignOp, Hashable | None, Hashable | None]]
_SURROGATES = range(0xD800, 0xE000)  # code points that are not characters; skipped when encoding tokens


def _as_strings(ref: Sequence[Hashable], hyp: Sequence[Hashable]) -> tuple[str, str]:
    """Map each distinct token to one code point so python-Levenshtein can compare token lists."""
    if isinstance(ref, str) and isinstance(hyp, str):
        return ref, hyp
    table: dict[Hashable, str] = {}
    for tok in (*ref, *hyp):
        if tok not in table:
            code = len(table)
            table[tok] = chr(code + len(_SURROGATES) if code >= _SURROGATES.start else code)
    return "".join(table[t] for t in ref), "".join(table[t] for t in hyp)


def edit_distance(ref: Sequence[Hashable], hyp: Sequence[Hashable]) -> int:
    """Levenshtein distance (unit cost sub/ins/del) between two strings or two token sequences."""
    return Levenshtein.distance(*_as_strings(ref, hyp))


def align(ref: Sequence[Hashable], hyp: Sequence[Hashable]) -> Alignment:
    """A minimum-cost alignment as ``(op, ref_tok, hyp_tok)`` triples.

    ``op`` is "cor" (equal), "sub", "ins" (``ref_tok`` is None) or "del" (``hyp_tok`` is None);
    the non-None ``ref_tok``s in order give ``ref`` back, the non-None ``hyp_tok``s give ``hyp``.
    """
    ref_s, hyp_s = _as_strings(ref, hyp)
    out: Alignment = []
    i = j = 0
    for op, spos, dpos in Levenshtein.editops(ref_s, hyp_s):
        while i < spos and j < dpos:  # matched stretch before this edit
            out.append(("cor", ref[i], hyp[j]))
            i, j = i + 1, j + 1
        if op == "replace":
            out.append(("sub", ref[i], hyp[j]))
            i, j = i + 1, j + 1
        elif op == "insert":
            out.append(("ins", None, hyp[j]))
            j += 1
        else:
            out.append(("del", ref[i], None))
            i += 1
    out.extend(("cor", ref[i + k], hyp[j + k]) for k in range(len(ref) - i))
    return out


def word_errors(ref: str, hyp: str) -> tuple[int, int]:
    """(word edits, reference word count); words are whitespace-separated."""
    ref_words = ref.split()
    return edit_distance(ref_words, hyp.split()), len(ref_words)


def char_errors(ref: str, hyp: str) -> tuple[int, int]:
    """(character edits, reference character count), IGNORING all whitespace.

    This is the MindSpore model zoo's CER: spaces are removed from both strings before the
    character Levenshtein distance, and the reference length excludes spaces. (jiwer's ``cer``
    counts spaces, so it differs from this one on strings that contain them.)
    """
    ref_chars = "".join(ref.split())
    return edit_distance(ref_chars, "".join(hyp.split())), len(ref_chars)


def error_rate(edits: int, total: int) -> float:
    """``edits / total`` as a fraction: the one definition of WER and CER (corpus-level, not a mean
    of per-utterance rates). ValueError when ``total`` is 0 (no reference tokens: undefined)."""
    if total == 0:
        raise ValueError("the references hold no tokens: the error rate is undefined")
    return edits / total


def corpus_wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus WER as a fraction: total word edits / total reference words.

    Empty references are allowed (their hypothesis words count as insertions); a ValueError is
    raised if all references are empty.
    """
    return error_totals(_score_pairs(refs, hyps)).wer


def corpus_cer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus CER as a fraction, whitespace ignored (see ``char_errors``); same rules as WER."""
    return error_totals(_score_pairs(refs, hyps)).cer


@dataclass(frozen=True)
class UtteranceResult:
    """One decoded utterance with its word and (space-free) character error counts."""

    utt_id: str
    ref: str
    hyp: str
    word_edits: int
    ref_words: int
    char_edits: int
    ref_chars: int


def score_utterance(utt_id: str, ref: str, hyp: str) -> UtteranceResult:
    """Score one reference/hypothesis pair."""
    word_edits, ref_words = word_errors(ref, hyp)
    char_edits, ref_chars = char_errors(ref, hyp)
    return UtteranceResult(utt_id, ref, hyp, word_edits, ref_words, char_edits, ref_chars)


def _score_pairs(refs: Sequence[str], hyps: Sequence[str]) -> list[UtteranceResult]:
    if len(refs) != len(hyps):
        raise ValueError(f"got {len(refs)} references but {len(hyps)} hypotheses")
    return [score_utterance(str(i), ref, hyp) for i, (ref, hyp) in enumerate(zip(refs, hyps))]


@dataclass(frozen=True)
class ErrorTotals:
    """Edit and reference counts summed over utterances; ``wer``/``cer`` are their corpus rates."""

    utterances: int
    word_edits: int
    ref_words: int
    char_edits: int
    ref_chars: int

    @property
    def wer(self) -> float:
        return error_rate(self.word_edits, self.ref_words)

    @property
    def cer(self) -> float:
        return error_rate(self.char_edits, self.ref_chars)


def error_totals(results: Iterable[UtteranceResult]) -> ErrorTotals:
    """Sum the word and character counts of scored utterances."""
    results = list(results)
    return ErrorTotals(len(results), sum(r.word_edits for r in results), sum(r.ref_words for r in results),
                       sum(r.char_edits for r in results), sum(r.ref_chars for r in results))


@dataclass(frozen=True)
class ErrorCounts:
    """How often each word error occurred over a set of utterances."""

    substitutions: Counter  # (ref_word, hyp_word) -> count
    insertions: Counter  # hyp_word -> count
    deletions: Counter  # ref_word -> count
    correct: Counter  # ref_word -> count of correct recognitions


def error_counts(results: Iterable[UtteranceResult]) -> ErrorCounts:
    """Count substitutions, insertions, deletions and correct words over all utterances."""
    counts = ErrorCounts(Counter(), Counter(), Counter(), Counter())
    for res in results:
        for op, r, h in align(res.ref.split(), res.hyp.split()):
            if op == "sub":
                counts.substitutions[(r, h)] += 1
            elif op == "ins":
                counts.insertions[h] += 1
            elif op == "del":
                counts.deletions[r] += 1
            else:
                counts.correct[r] += 1
    return counts


def _format_alignment(ali: Alignment) -> str:
    """Correct words as is; errors as ``(REF->HYP)``, ``(*->HYP)`` or ``(REF->*)``."""
    return " ".join(str(r) if op == "cor" else f"({'*' if r is None else r}->{'*' if h is None else h})"
                    for op, r, h in ali)


def write_recogs(path: str | Path, results: Sequence[UtteranceResult]) -> None:
    """recogs-<set>.txt: ``utt: ref=...`` and ``utt: hyp=...`` lines, sorted by utterance id."""
    with open(path, "w", encoding="utf-8") as fh:
        for res in sorted(results, key=lambda r: r.utt_id):
            fh.write(f"{res.utt_id}:\tref={res.ref}\n{res.utt_id}:\thyp={res.hyp}\n")


def read_recogs(path: str | Path) -> list[UtteranceResult]:
    """The scored utterances of a recogs-<set>.txt (:func:`write_recogs`' format); a line that is neither
    ``utt:<TAB>ref=...`` nor ``utt:<TAB>hyp=...``, or an utterance without both, is an error naming the file."""
    refs: dict[str, str] = {}
    hyps: dict[str, str] = {}
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            utt_id, sep, rest = line.rstrip("\n").partition(":\t")
            kind, text = rest[:4], rest[4:]
            if not sep or kind not in ("ref=", "hyp="):
                raise ValueError(f"{path}:{number}: expected 'utt:<TAB>ref=...' or 'utt:<TAB>hyp=...', got {line!r}")
            (refs if kind == "ref=" else hyps)[utt_id] = text
    if refs.keys() != hyps.keys():
        raise ValueError(f"{path}: utterances without both ref= and hyp=: {sorted(refs.keys() ^ hyps.keys())[:5]}")
    return [score_utterance(utt_id, refs[utt_id], hyps[utt_id]) for utt_id in sorted(refs)]


def _rate_line(name: str, edits: int, total: int) -> str:
    rate = f"{100.0 * error_rate(edits, total):.2f}" if total else "nan"
    return f"%{name} {rate} [ {edits} / {total} ]"


def write_errs(path: str | Path, results: Sequence[UtteranceResult], top_n: int = 20) -> None:
    """errs-<set>.txt: corpus rates, per-utterance alignments, then the ``top_n`` commonest errors."""
    if top_n < 0:
        raise ValueError(f"top_n must be >= 0, got {top_n}")
    totals = error_totals(results)
    counts = error_counts(results)
    lines = [_rate_line("WER", totals.word_edits, totals.ref_words),
             _rate_line("CER", totals.char_edits, totals.ref_chars), "", "PER-UTT DETAILS:"]
    for res in sorted(results, key=lambda r: r.utt_id):
        lines.append(f"{res.utt_id}:\t{_format_alignment(align(res.ref.split(), res.hyp.split()))}")
    lines += ["", "SUBSTITUTIONS: count ref -> hyp"]
    lines += [f"{n}\t{r} -> {h}" for (r, h), n in counts.substitutions.most_common(top_n)]
    lines += ["", "DELETIONS: count ref"]
    lines += [f"{n}\t{r}" for r, n in counts.deletions.most_common(top_n)]
    lines += ["", "INSERTIONS: count hyp"]
    lines += [f"{n}\t{h}" for h, n in counts.insertions.most_common(top_n)]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def write_wer_summary(path: str | Path, results: Sequence[UtteranceResult]) -> None:
    """wer-summary-<set>.txt: corpus WER and CER (percent) with their edit and reference counts."""
    t = error_totals(results)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"utterances\t{t.utterances}\n{_rate_line('WER', t.word_edits, t.ref_words)}\n"
                 f"{_rate_line('CER', t.char_edits, t.ref_chars)}\n")
