"""CTC decoders on log-probabilities: greedy (best path) and prefix beam search with a word LM.

Beam scores follow deepspeech.pytorch / PaddleSpeech: ``ln P_ctc + alpha * ln P_lm + beta * words``
with natural logs throughout (``NGramLM`` converts ARPA's log10). A word is scored by the LM when
the space label is emitted after it, and the last partial word at the end of the utterance.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, NamedTuple, Sequence

import numpy as np

from deepspeech2.core.config import DecoderKind, EvalConfig, choices
from deepspeech2.decoding.lm import BOS, NGramLM

if TYPE_CHECKING:
    from deepspeech2.data.vocab import Vocab

__all__ = [
    "DECODER_KINDS",
    "greedy_decode",
    "greedy_decode_with_frames",
    "greedy_decode_batch",
    "beam_search_nbest",
    "beam_search_decode",
    "make_decoder",
    "build_decoder",
]

DECODER_KINDS = choices(DecoderKind)
_REQUIRED_BEAM_OPTIONS = frozenset({"beam_width", "alpha", "beta", "cutoff_prob", "cutoff_top_n"})
_BEAM_OPTIONS = _REQUIRED_BEAM_OPTIONS | {"lm", "space_label", "lexicon", "oov_penalty"}
_NEG_INF = float("-inf")


def _check_labels(num_classes: int, labels: Sequence[str], blank: int) -> None:
    if num_classes != len(labels):
        raise ValueError(f"log_probs have {num_classes} classes but there are {len(labels)} labels")
    if not 0 <= blank < len(labels):
        raise ValueError(f"blank id {blank} is outside [0, {len(labels)})")


def _num_frames(total: int, length: int | None) -> int:
    if length is None:
        return total
    if not 0 <= length <= total:
        raise ValueError(f"length {length} is outside [0, {total}]")
    return int(length)


def _emit_mask(ids: np.ndarray, blank: int) -> np.ndarray:
    """(..., T) argmax ids -> (..., T) bool: the frames where best-path decoding emits a label."""
    prev = np.concatenate([np.full(ids.shape[:-1] + (1,), -1, dtype=ids.dtype), ids[..., :-1]], axis=-1)
    return (ids != blank) & (ids != prev)


def greedy_decode_with_frames(
    log_probs: np.ndarray, labels: Sequence[str], blank: int, length: int | None = None
) -> tuple[str, list[int]]:
    """Best-path decoding of (T, C) log-probs; also the (output) frame index of each emitted label,
    e.g. for word timestamps (multiply by the model's frame shift times its time subsampling)."""
    if log_probs.ndim != 2:
        raise ValueError(f"expected (T, C) log_probs, got shape {log_probs.shape}")
    _check_labels(log_probs.shape[1], labels, blank)
    ids = np.argmax(log_probs[: _num_frames(log_probs.shape[0], length)], axis=-1)
    frames = np.flatnonzero(_emit_mask(ids, blank))
    return "".join(labels[i] for i in ids[frames]), frames.tolist()


def greedy_decode(log_probs: np.ndarray, labels: Sequence[str], blank: int, length: int | None = None) -> str:
    """Best-path decoding of (T, C) log-probs: argmax per frame, collapse repeats, drop blanks."""
    return greedy_decode_with_frames(log_probs, labels, blank, length)[0]


def _check_lengths(lengths: np.ndarray | Sequence[int] | None, batch: int, frames: int) -> np.ndarray:
    if lengths is None:
        return np.full(batch, frames, dtype=np.int64)
    lengths = np.asarray(lengths)
    if lengths.shape != (batch,):
        raise ValueError(f"expected ({batch},) lengths, got shape {lengths.shape}")
    if lengths.size and (lengths.min() < 0 or lengths.max() > frames):
        raise ValueError(f"lengths must lie in [0, {frames}], got {lengths.tolist()}")
    return lengths.astype(np.int64)


def greedy_decode_batch(
    log_probs: np.ndarray, lengths: np.ndarray | Sequence[int] | None, labels: Sequence[str], blank: int
) -> list[str]:
    """Best-path decoding of (N, T, C) log-probs; frames at or beyond ``lengths`` (N,) are ignored."""
    if log_probs.ndim != 3:
        raise ValueError(f"expected (N, T, C) log_probs, got shape {log_probs.shape}")
    _check_labels(log_probs.shape[2], labels, blank)
    batch, frames = log_probs.shape[:2]
    lengths = _check_lengths(lengths, batch, frames)
    ids = np.argmax(log_probs, axis=-1)  # (N, T)
    keep = _emit_mask(ids, blank) & (np.arange(frames)[None, :] < lengths[:, None])
    return ["".join(labels[i] for i in row[mask]) for row, mask in zip(ids, keep)]


class _PrefixTree:
    """Label prefixes as trie nodes (O(1) extension and hashing) with their LM bookkeeping."""

    def __init__(self, labels: Sequence[str], space: int, lm: "NGramLM | None", alpha: float, beta: float,
                 lexicon: bool = False, oov_penalty: float = math.inf) -> None:
        self.labels, self.space, self.lm, self.alpha, self.beta = labels, space, lm, alpha, beta
        # lexicon: words are spelled as the LM's words (prefix set of its vocabulary); strict: only
        # those; soft (finite oov_penalty): any other word costs oov_penalty per letter from where it
        # leaves the lexicon, and its <unk> LM score as it leaves (so a long run of letters without a
        # space is never a cheap way around the LM)
        self.words = lm.words if lexicon and lm is not None else None
        self.prefixes = lm.word_prefixes if self.words is not None else None
        self.oov_penalty = oov_penalty
        self.strict = self.prefixes is not None and math.isinf(oov_penalty)
        self.soft = self.prefixes is not None and not self.strict
        # per-label arrays depend on the partial word only: cached by word, shared by every prefix ending in it
        self._masks: dict[str, np.ndarray] = {}
        self._penalties: dict[str, np.ndarray] = {}
        self._bonuses: dict[tuple[str, tuple[str, ...]], float] = {}
        self.parent, self.label = [-1], [-1]
        self.space_child = [-1]  # the node of prefix + space once made (-1: not yet)
        self._letter_ids = {label: c for c, label in enumerate(labels) if len(label) == 1 and c != space}
        self._longer_labels = [c for c, label in enumerate(labels) if len(label) != 1 and c != space]
        self.word = [""]  # the partial word at the end of each prefix
        self.history: list[tuple[str, ...]] = [(BOS,)]  # the LM's last (order - 1) completed words
        self.lm_score = [0.0]  # alpha * ln P_lm + beta * words over the completed words
        self._children: dict[tuple[int, int], int] = {}
        self._ctx = max(lm.order - 1, 0) if lm is not None else 0

    def _word_bonus(self, word: str, history: tuple[str, ...]) -> float:
        key = (word, history)
        bonus = self._bonuses.get(key)
        if bonus is None:
            bonus = self._bonuses[key] = self.alpha * self.lm.score(word, history) + self.beta
        return bonus

    def child(self, node: int, c: int) -> int:
        """The node of prefix ``node + [c]``, created on first use."""
        key = (node, c)
        found = self._children.get(key)
        if found is not None:
            return found
        word, history, score = self.word[node], self.history[node], self.lm_score[node]
        if self.lm is None:
            pass
        elif self.soft and c == self.space and not word:
            score = _NEG_INF                            # a space needs a word before it
        elif c != self.space:
            score -= self._letter_cost(word, word + self.labels[c])
            word = word + self.labels[c]
        elif word:
            score += self._word_bonus(word, history) - self._completion_cost(word)
            history = (history + (word,))[-self._ctx:] if self._ctx else ()
            word = ""
        new = len(self.parent)
        self.parent.append(node)
        self.space_child.append(-1)
        if c == self.space:
            self.space_child[node] = new
        self.label.append(c)
        self.word.append(word)
        self.history.append(history)
        self.lm_score.append(score)
        self._children[key] = new
        return new

    def _letter_cost(self, word: str, longer: str) -> float:
        """Soft lexicon: the cost of extending partial ``word`` to ``longer`` by one letter — nothing
        inside the lexicon's prefixes; outside, ``oov_penalty``, plus the LM's <unk> score the moment
        the word leaves."""
        if not self.soft or longer in self.prefixes:
            return 0.0
        leaves = word in self.prefixes
        return self.oov_penalty - (self.alpha * self.lm.unk_logprob if leaves else 0.0)

    def _completion_cost(self, word: str) -> float:
        """Soft lexicon: what completing ``word`` adds to the cost of its LM bonus — one letter's
        penalty for a lexicon prefix that is no word; for a word that left the lexicon, the <unk> score
        charged then is given back (the bonus scores it as <unk>)."""
        if not self.soft or word in self.words:
            return 0.0
        if word in self.prefixes:
            return self.oov_penalty
        return self.alpha * self.lm.unk_logprob

    def label_penalty(self, node: int) -> np.ndarray | None:
        """(C,) the LM-side cost of extending ``node`` by each label, as its child's ``lm_score`` will
        have it (the space label's word score aside); None when nothing is charged per label."""
        if not self.soft:
            return None
        word = self.word[node]
        penalty = self._penalties.get(word)
        if penalty is None:
            penalty = np.array([0.0 if c == self.space else self._letter_cost(word, word + label)
                                for c, label in enumerate(self.labels)])
            self._penalties[word] = penalty
        return penalty

    def lexicon_mask(self, node: int) -> np.ndarray | None:
        """(C,) bool: the labels that keep ``node``'s partial word a prefix of a lexicon word (space:
        only after a whole word); None without a strict lexicon."""
        if not self.strict:
            return None
        word = self.word[node]
        mask = self._masks.get(word)
        if mask is None:
            mask = np.zeros(len(self.labels), dtype=bool)
            for letter in self.lm.next_letters.get(word, ()):
                c = self._letter_ids.get(letter)
                if c is not None:
                    mask[c] = True
            for c in self._longer_labels:
                mask[c] = (word + self.labels[c]) in self.prefixes
            if self.space >= 0:
                mask[self.space] = word in self.words
            self._masks[word] = mask
        return mask

    def space_scores(self, nodes: list[int]) -> list[float]:
        """``lm_score`` of each node's child by the space label (made on first use)."""
        made, lm_score = self.space_child, self.lm_score
        return [lm_score[made[n] if made[n] >= 0 else self.child(n, self.space)] for n in nodes]

    def final_score(self, node: int) -> float:
        """LM bonus of a finished prefix: its completed words plus the trailing partial word (which,
        with a lexicon, must be a whole word)."""
        word = self.word[node]
        if word and self.strict and word not in self.words:
            return _NEG_INF
        if not word:
            return self.lm_score[node]
        return self.lm_score[node] + self._word_bonus(word, self.history[node]) - self._completion_cost(word)

    def text(self, node: int) -> str:
        out: list[str] = []
        while node > 0:
            out.append(self.labels[self.label[node]])
            node = self.parent[node]
        return "".join(reversed(out))


def _allowed_labels(log_probs: np.ndarray, blank: int, cutoff_prob: float, cutoff_top_n: int) -> np.ndarray:
    """(T, C) log-probs -> (T, C) bool: the labels a prefix may be extended by at each frame.

    These are the ``cutoff_top_n`` most probable labels, cut once their cumulative probability
    reaches ``cutoff_prob`` (the label crossing it is kept), as in PaddleSpeech; blank is handled apart.
    """
    top_n = min(cutoff_top_n, log_probs.shape[1])
    order = np.argsort(-log_probs, axis=1, kind="stable")[:, :top_n]
    keep = np.full(len(order), top_n)
    if cutoff_prob < 1.0:
        cum = np.cumsum(np.exp(np.take_along_axis(log_probs, order, axis=1)), axis=1)
        keep = np.minimum((cum < cutoff_prob).sum(axis=1) + 1, top_n)
    allowed = np.zeros(log_probs.shape, dtype=bool)
    np.put_along_axis(allowed, order, np.arange(top_n)[None, :] < keep[:, None], axis=1)
    allowed[:, blank] = False
    return allowed


class _Beams(NamedTuple):
    """The live prefixes: trie nodes and ln P(prefix, path ends in blank / in a label), each (B,)."""

    nodes: list[int]
    p_blank: np.ndarray
    p_label: np.ndarray


def _stays(beams: _Beams, row: np.ndarray, tree: _PrefixTree, blank: int):
    """(last labels (B,), ln P(prefix) (B,), ln P of staying on each prefix through a blank, and through
    its last label repeated): what every frame scores, whether or not a prefix may grow."""
    nodes, pb, pnb = beams
    last = np.array([tree.label[n] for n in nodes])  # -1 for the empty prefix
    total = np.logaddexp(pb, pnb)
    stay_pb = total + row[blank]
    stay_pnb = np.where(last >= 0, pnb + row[last], _NEG_INF)  # a repeated label collapses
    return last, total, stay_pb, stay_pnb


def _stay(beams: _Beams, row: np.ndarray, tree: _PrefixTree, blank: int) -> _Beams:
    """A frame whose pruning allows no label: every prefix stays (blank, or its last label repeated),
    none grows, so there is nothing to rank (B <= beam width); only impossible prefixes leave."""
    nodes = beams.nodes
    _, _, stay_pb, stay_pnb = _stays(beams, row, tree, blank)
    alive = np.flatnonzero(np.isfinite(np.logaddexp(stay_pb, stay_pnb)))
    if len(alive) == len(nodes):
        return _Beams(nodes, stay_pb, stay_pnb)
    return _Beams([nodes[i] for i in alive], stay_pb[alive], stay_pnb[alive])


def _step(beams: _Beams, row: np.ndarray, allowed: np.ndarray, tree: _PrefixTree, blank: int,
          beam_width: int) -> _Beams:
    """One frame of prefix beam search on (C,) log-probs, scoring all B x C moves at once."""
    nodes, pb, pnb = beams
    last, total, stay_pb, stay_pnb = _stays(beams, row, tree, blank)
    lm = np.array([tree.lm_score[n] for n in nodes])
    if tree.strict:  # strict lexicon: only spellings of the LM's words
        allowed = allowed[None, :] & np.stack([tree.lexicon_mask(n) for n in nodes])
    ext = np.where(allowed, total[:, None] + row[None, :], _NEG_INF)  # (B, C) -> child prefixes
    allowed_last = allowed[np.arange(len(nodes)), np.maximum(last, 0)] if allowed.ndim == 2 else \
        allowed[np.maximum(last, 0)]
    rows = np.flatnonzero((last >= 0) & allowed_last)
    ext[rows, last[rows]] = pb[rows] + row[last[rows]]  # the same label again needs a blank between
    index = {n: i for i, n in enumerate(nodes)}
    for i, n in enumerate(nodes):  # an extension that reaches a live prefix merges into it
        j = index.get(tree.parent[n])
        if j is not None:
            stay_pnb[i] = np.logaddexp(stay_pnb[i], ext[j, tree.label[n]])
            ext[j, tree.label[n]] = _NEG_INF
    score = ext + lm[:, None]
    if tree.soft:  # a word outside the lexicon pays per letter
        score -= np.stack([tree.label_penalty(n) for n in nodes])
    if tree.lm is not None:  # emitting a space completes a word: add its LM score
        score[:, tree.space] = ext[:, tree.space] + tree.space_scores(nodes)
    score = np.concatenate([np.logaddexp(stay_pb, stay_pnb) + lm, score.ravel()])
    top = np.argpartition(-score, beam_width - 1)[:beam_width] if len(score) > beam_width else np.arange(len(score))
    top = top[np.isfinite(score[top])].tolist()
    num, width = len(nodes), row.shape[0]
    next_nodes = [nodes[k] if k < num else tree.child(nodes[(k - num) // width], (k - num) % width) for k in top]
    ext_flat = ext.ravel()
    next_pb = np.array([stay_pb[k] if k < num else _NEG_INF for k in top])
    next_pnb = np.array([stay_pnb[k] if k < num else ext_flat[k - num] for k in top])
    return _Beams(next_nodes, next_pb, next_pnb)


def _check_beam_args(labels: Sequence[str], blank: int, beam_width: int, lm: "NGramLM | None",
                     cutoff_prob: float, cutoff_top_n: int, space_label: str, oov_penalty: float = math.inf) -> int:
    """Validate the beam options; return the space label's id (-1 if absent and no LM)."""
    if beam_width < 1:
        raise ValueError(f"beam_width must be >= 1, got {beam_width}")
    if not 0.0 < cutoff_prob <= 1.0:
        raise ValueError(f"cutoff_prob must lie in (0, 1], got {cutoff_prob}")
    if cutoff_top_n < 1:
        raise ValueError(f"cutoff_top_n must be >= 1, got {cutoff_top_n}")
    if not oov_penalty >= 0:
        raise ValueError(f"oov_penalty must be >= 0 (inf: strict lexicon), got {oov_penalty}")
    space = list(labels).index(space_label) if space_label in labels else -1
    if lm is not None and (space < 0 or space == blank):
        raise ValueError(f"an LM needs the space label {space_label!r} among the non-blank labels")
    return space


def beam_search_nbest(
    log_probs: np.ndarray, labels: Sequence[str], blank: int, *, beam_width: int, alpha: float, beta: float,
    cutoff_prob: float, cutoff_top_n: int, lm: "NGramLM | None" = None, length: int | None = None,
    space_label: str = " ", lexicon: bool = False, oov_penalty: float = math.inf,
) -> list[tuple[str, float]]:
    """CTC prefix beam search over (T, C) log-probs; the final beams as (text, score), best first.

    score = ln P_ctc(text) + alpha * ln P_lm(words) + beta * len(words); alpha and beta only
    apply with an ``lm`` and should be tuned on a dev set. Each frame extends prefixes only by its
    top ``cutoff_top_n`` labels within cumulative probability ``cutoff_prob``; staying on a prefix
    (blank, or its last label repeated) is always scored. Only the first ``length`` frames count.
    ``lexicon`` (with an ``lm``): every word must be one of the LM's words (lexicon-constrained
    search, as in wav2letter/flashlight); a beam whose last word is unfinished at the end is dropped,
    unless every beam is. A finite ``oov_penalty`` softens that: a word outside the lexicon may be
    spelled (names and rare words the LM text never had), at ``oov_penalty`` (natural-log units) per
    letter from the first one that no lexicon word continues with (a lexicon prefix that ends as a word:
    one letter), on top of its LM score as ``<unk>``. The cost grows with the letters, so dropping
    the spaces between several words never makes a cheap "word" of them.
    The search options have no defaults here: their one home is ``EvalConfig`` (see ``build_decoder``).
    """
    if log_probs.ndim != 2:
        raise ValueError(f"expected (T, C) log_probs, got shape {log_probs.shape}")
    _check_labels(log_probs.shape[1], labels, blank)
    space = _check_beam_args(labels, blank, beam_width, lm, cutoff_prob, cutoff_top_n, space_label, oov_penalty)
    log_probs = np.asarray(log_probs[: _num_frames(log_probs.shape[0], length)], dtype=np.float64)
    if np.isnan(log_probs).any():
        raise ValueError("log_probs contain NaN")
    tree = _PrefixTree(labels, space, lm, alpha, beta, lexicon, oov_penalty)
    beams = _Beams([0], np.zeros(1), np.full(1, _NEG_INF))  # the empty prefix, probability 1
    allowed = _allowed_labels(log_probs, blank, cutoff_prob, cutoff_top_n)
    for row, allowed_row in zip(log_probs, allowed):
        if not beams.nodes:  # every path has probability 0
            break
        if allowed_row.any():
            beams = _step(beams, row, allowed_row, tree, blank, beam_width)
        else:  # most frames of a trained model: blank alone within cutoff_prob
            beams = _stay(beams, row, tree, blank)
    final = [(tree.text(n), float(np.logaddexp(pb, pnb)) + tree.final_score(n)) for n, pb, pnb in zip(*beams)]
    if final and all(score == _NEG_INF for _, score in final):  # lexicon: no beam ended on a whole word
        final = [(tree.text(n), float(np.logaddexp(pb, pnb)) + tree.lm_score[n]) for n, pb, pnb in zip(*beams)]
    return sorted(final, key=lambda item: -item[1])


def beam_search_decode(log_probs: np.ndarray, labels: Sequence[str], blank: int, **options) -> str:
    """The best transcript of (T, C) log-probs under ``beam_search_nbest`` (same keyword options)."""
    nbest = beam_search_nbest(log_probs, labels, blank, **options)
    return nbest[0][0] if nbest else ""  # empty only if every path has probability 0


def make_decoder(kind: str, labels: Sequence[str], blank: int, **opts) -> Callable[..., list[str]]:
    """A batch decoder ``decode(log_probs (N, T, C), lengths (N,) | None) -> list[str]``.

    ``kind`` is one of ``DECODER_KINDS``; "beam" takes ``beam_search_nbest``'s keyword options, and
    needs every search option (``_REQUIRED_BEAM_OPTIONS``) given explicitly.
    """
    if kind == "greedy":
        if opts:
            raise ValueError(f"the greedy decoder takes no options, got {sorted(opts)}")
        return lambda log_probs, lengths=None: greedy_decode_batch(log_probs, lengths, labels, blank)
    if kind != "beam":
        raise ValueError(f"unknown decoder kind {kind!r}; valid kinds: {', '.join(DECODER_KINDS)}")
    unknown = set(opts) - _BEAM_OPTIONS
    if unknown:
        raise ValueError(f"unknown beam options {sorted(unknown)}; valid: {sorted(_BEAM_OPTIONS)}")
    missing = _REQUIRED_BEAM_OPTIONS - set(opts)
    if missing:
        raise ValueError(f"missing beam options {sorted(missing)} (their values come from the eval config)")
    _check_beam_args(labels, blank, opts["beam_width"], opts.get("lm"), opts["cutoff_prob"], opts["cutoff_top_n"],
                     opts.get("space_label", " "), opts.get("oov_penalty", math.inf))

    def decode(log_probs: np.ndarray, lengths: np.ndarray | Sequence[int] | None = None) -> list[str]:
        if log_probs.ndim != 3:
            raise ValueError(f"expected (N, T, C) log_probs, got shape {log_probs.shape}")
        lengths = _check_lengths(lengths, log_probs.shape[0], log_probs.shape[1])
        return [beam_search_decode(lp, labels, blank, length=int(n), **opts) for lp, n in zip(log_probs, lengths)]

    return decode


def build_decoder(eval_cfg: EvalConfig, vocab: Vocab, lm: "NGramLM | None" = None) -> Callable:
    """The configured batch decoder ``decode(log_probs (N, T, C), lengths (N,)) -> list[str]``.
    ``lm``: an already loaded ``eval.lm_path`` (decoders with other weights share one LM)."""
    if eval_cfg.decoder == "greedy":
        return make_decoder("greedy", vocab.labels, vocab.blank)
    if lm is None and eval_cfg.lm_path:
        lm = NGramLM.from_arpa(eval_cfg.lm_path)
    return make_decoder(eval_cfg.decoder, vocab.labels, vocab.blank, beam_width=eval_cfg.beam_width,
                        lm=lm, alpha=eval_cfg.lm_alpha, beta=eval_cfg.lm_beta, lexicon=eval_cfg.lexicon,
                        oov_penalty=eval_cfg.oov_penalty,
                        cutoff_prob=eval_cfg.cutoff_prob, cutoff_top_n=eval_cfg.cutoff_top_n)
