"""Beam-search LM weights tuned on a dev set: the network runs once, the grid decodes its output.

``score = ln P_ctc + alpha * ln P_lm + beta * words`` (see ``decoding.decoders``): alpha and beta
depend on the acoustic model and the LM, so they are chosen on held-out data (dev, never test) —
as deepspeech.pytorch's ``search_lm_params`` and PaddleSpeech's ``tune`` do. With ``eval.lexicon``,
the soft lexicon's per-letter cost of unknown words (``eval.oov_penalty``) can be a third axis.
Ties in WER go to CER.
"""
from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from deepspeech2.core.config import Config
from deepspeech2.decoding.decoders import build_decoder
from deepspeech2.decoding.evaluator import Evaluator
from deepspeech2.decoding.lm import NGramLM
from deepspeech2.decoding.metrics import error_totals
from deepspeech2.inference.acoustic import load_acoustic_model

__all__ = ["GridPoint", "tune_lm_weights"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GridPoint:
    alpha: float
    beta: float
    oov_penalty: float
    wer: float
    cer: float


def tune_lm_weights(cfg: Config, model_path: str | Path, manifest: str | Path, lm_path: str | Path,
                    alphas: Sequence[float], betas: Sequence[float],
                    oov_penalties: Sequence[float] = ()) -> tuple[GridPoint, list[GridPoint]]:
    """Decode ``manifest`` with beam search + ``lm_path`` at every (alpha, beta, oov_penalty) (no
    penalties: the config's ``eval.oov_penalty``); return the best point (lowest WER, then CER) and
    the whole grid. The greedy result is logged for reference."""
    if not alphas or not betas:
        raise ValueError("give at least one alpha and one beta")
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
    for penalty, alpha, beta in itertools.product(oov_penalties, alphas, betas):
        decoder = build_decoder(replace(beam_cfg, lm_alpha=alpha, lm_beta=beta, oov_penalty=penalty), model.vocab, lm)
        totals = error_totals(evaluator.score(posteriors, decoder))
        grid.append(GridPoint(alpha, beta, penalty, totals.wer, totals.cer))
        log.info("alpha %.2f beta %.2f oov_penalty %g: WER %.2f CER %.2f", alpha, beta, penalty,
                 100 * totals.wer, 100 * totals.cer)
    return min(grid, key=lambda p: (p.wer, p.cer)), grid
