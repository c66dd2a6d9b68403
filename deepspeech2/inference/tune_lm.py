"""Beam-search LM weights tuned on a dev set: the network runs once, the grid decodes its output.

``score = ln P_ctc + alpha * ln P_lm + beta * words`` (see ``decoding.decoders``): alpha and beta
depend on the acoustic model and the LM, so they are chosen on held-out data (dev, never test) —
as deepspeech.pytorch's ``search_lm_params`` and PaddleSpeech's ``tune`` do. With ``eval.lexicon``,
the soft lexicon's per-letter cost of unknown words (``eval.oov_penalty``) can be a third axis.
``objective="wer"`` picks the lowest WER (ties go to CER), ``"cer"`` the lowest CER (ties go to
WER). ``search="grid"`` decodes every (alpha, beta); ``"coordinate"`` moves along
one axis at a time from the config's weights (see :func:`coordinate_search`), which on the 4 × 4
default grid decodes about half the points.
"""
from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

from deepspeech2.core.config import Config
from deepspeech2.decoding.decoders import build_decoder
from deepspeech2.decoding.evaluator import Evaluator
from deepspeech2.decoding.lm import NGramLM
from deepspeech2.decoding.metrics import error_totals
from deepspeech2.inference.acoustic import load_acoustic_model

__all__ = ["GridPoint", "OBJECTIVES", "SEARCHES", "coordinate_search", "tune_lm_weights"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GridPoint:
    alpha: float
    beta: float
    oov_penalty: float
    wer: float
    cer: float

    def key(self, objective: str) -> tuple[float, float]:
        """What ``objective`` minimises: (WER, CER) or (CER, WER)."""
        return (self.wer, self.cer) if objective == "wer" else (self.cer, self.wer)


SEARCHES = ("grid", "coordinate")
OBJECTIVES = ("wer", "cer")

Score = tuple[float, float]   # lower is better, compared in order (GridPoint.key)


def _nearest(values: Sequence[float], target: float) -> float:
    return min(values, key=lambda v: (abs(v - target), v))


def coordinate_search(score: Callable[[float, float], Score], alphas: Sequence[float], betas: Sequence[float],
                      start: tuple[float, float]) -> dict[tuple[float, float], Score]:
    """Coordinate descent over the (alpha, beta) grid from the grid point nearest ``start``: try every
    alpha at the current beta, then every beta at the best alpha, and repeat until neither sweep finds a
    strictly better point (ties keep the current one, so it always ends). Each point is scored once;
    returns the scored points in the order they were scored."""
    scored: dict[tuple[float, float], Score] = {}

    def best_of(points: list[tuple[float, float]], current: tuple[float, float]) -> tuple[float, float]:
        for point in points:
            if point not in scored:
                scored[point] = score(*point)
        return min(points, key=lambda p: (scored[p], p != current))

    current = (_nearest(alphas, start[0]), _nearest(betas, start[1]))
    while True:
        moved = best_of([(a, current[1]) for a in alphas], current)
        moved = best_of([(moved[0], b) for b in betas], moved)
        if moved == current:
            return scored
        current = moved


def tune_lm_weights(cfg: Config, model_path: str | Path, manifest: str | Path, lm_path: str | Path,
                    alphas: Sequence[float], betas: Sequence[float],
                    oov_penalties: Sequence[float] = (), search: str = "grid",
                    objective: str = "wer") -> tuple[GridPoint, list[GridPoint]]:
    """Decode ``manifest`` with beam search + ``lm_path`` at (alpha, beta) points of the grid for each
    oov_penalty (no penalties: the config's ``eval.oov_penalty``) — all of them, or those
    :func:`coordinate_search` visits from the config's ``eval.lm_alpha``/``lm_beta``; return the best
    point by ``objective`` (lowest WER then CER, or lowest CER then WER) and every point decoded. The
    greedy result is logged for reference."""
    if not alphas or not betas:
        raise ValueError("give at least one alpha and one beta")
    if search not in SEARCHES:
        raise ValueError(f"search must be one of {', '.join(SEARCHES)}, got {search!r}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    oov_penalties = tuple(oov_penalties) or (cfg.eval.oov_penalty,)
    if not Path(lm_path).is_file():
        raise FileNotFoundError(f"LM not found: {lm_path}")
    model = load_acoustic_model(model_path, cfg)
    cfg = replace(cfg, features=model.features)
    evaluator = Evaluator(model.forward, model.vocab, cfg, manifest, with_loss=False)
    posteriors = evaluator.posteriors(desc=f"posteriors {Path(manifest).name}")
    greedy = error_totals(evaluator.score(posteriors, build_decoder(replace(cfg.eval, decoder="greedy"),
                                                                    model.vocab)))
    log.info("greedy: WER %.2f CER %.2f", 100 * greedy.wer, 100 * greedy.cer)
    beam_cfg = replace(cfg.eval, decoder="beam", lm_path=str(lm_path))
    lm = NGramLM.from_arpa(lm_path)                           # loaded once for the whole grid
    grid = []
    for penalty in oov_penalties:
        def score(alpha: float, beta: float, penalty: float = penalty) -> Score:
            decoder = build_decoder(replace(beam_cfg, lm_alpha=alpha, lm_beta=beta, oov_penalty=penalty),
                                    model.vocab, lm)
            totals = error_totals(evaluator.score(posteriors, decoder))
            grid.append(GridPoint(alpha, beta, penalty, totals.wer, totals.cer))
            log.info("alpha %.2f beta %.2f oov_penalty %g: WER %.2f CER %.2f", alpha, beta, penalty,
                     100 * totals.wer, 100 * totals.cer)
            return grid[-1].key(objective)

        if search == "grid":
            for alpha, beta in itertools.product(alphas, betas):
                score(alpha, beta)
        else:
            coordinate_search(score, alphas, betas, (cfg.eval.lm_alpha, cfg.eval.lm_beta))
    return min(grid, key=lambda p: p.key(objective)), grid
