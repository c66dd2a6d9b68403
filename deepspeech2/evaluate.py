"""Evaluation: ``ds2-eval`` / the lab's ``eval.py`` → Average WER/CER, recogs/errs/wer-summary files.

Every utterance of the manifest is decoded exactly once (sorted, batched, the last batch smaller),
at any length; a checkpoint or an exported MINDIR can be evaluated.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from deepspeech2.config import Config, EvalConfig
from deepspeech2.dataset import BatchSource, create_dataset, ctc_min_frames, load_utterances, make_batches
from deepspeech2.metrics import (UtteranceResult, score_utterance, write_errs, write_recogs,
                                 write_wer_summary)
from deepspeech2.vocab import Vocab

__all__ = ["EvalResult", "Evaluator", "build_decoder", "evaluate", "main"]

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    results: list[UtteranceResult]
    loss: float | None           # mean CTC loss over alignable utterances (None: not computed)
    audio_seconds: float
    wall_seconds: float

    def summary(self) -> dict:
        words = sum(r.ref_words for r in self.results)
        chars = sum(r.ref_chars for r in self.results)
        out = {"wer": sum(r.word_edits for r in self.results) / max(words, 1),
               "cer": sum(r.char_edits for r in self.results) / max(chars, 1),
               "utterances": len(self.results), "ref_words": words,
               "audio_hours": self.audio_seconds / 3600, "rtf": self.wall_seconds / max(self.audio_seconds, 1e-9)}
        if self.loss is not None:
            out["loss"] = self.loss
        return out


def build_decoder(eval_cfg: EvalConfig, vocab: Vocab) -> Callable:
    """The configured batch decoder ``decode(log_probs (N, T, C), lengths (N,)) -> list[str]``."""
    from deepspeech2.decoder import make_decoder

    if eval_cfg.decoder == "greedy":
        return make_decoder("greedy", vocab.labels, vocab.blank)
    lm = None
    if eval_cfg.lm_path:
        from deepspeech2.lm import NGramLM
        lm = NGramLM.from_arpa(eval_cfg.lm_path)
    return make_decoder(eval_cfg.decoder, vocab.labels, vocab.blank, beam_width=eval_cfg.beam_width,
                        lm=lm, alpha=eval_cfg.lm_alpha, beta=eval_cfg.lm_beta,
                        cutoff_prob=eval_cfg.cutoff_prob, cutoff_top_n=eval_cfg.cutoff_top_n)


class Evaluator:
    """Decodes a manifest with a network (``nn.Cell``) or any ``forward(features, lengths)``
    returning time-major log-probs ``(T', N, C)`` and output lengths ``(N,)``."""

    def __init__(self, net, vocab: Vocab, cfg: Config, manifest: str | Path, decoder: Callable | None = None,
                 with_loss: bool = True, graph: bool = True):
        import mindspore
        from deepspeech2.loss import CTCLoss

        self.vocab, self.cfg, self.manifest = vocab, cfg, manifest
        self.utts, self.dropped = load_utterances(manifest, vocab, cfg, training=False)
        batches = make_batches(self.utts, cfg.data.eval_batch_size)
        self.source = BatchSource(self.utts, batches, vocab, cfg)
        self.forward = mindspore.jit(net) if graph and isinstance(net, mindspore.nn.Cell) else net
        self.loss_fn = CTCLoss(vocab.blank) if with_loss else None
        self.decoder = decoder or build_decoder(EvalConfig(), vocab)

    def run(self, desc: str = "eval") -> EvalResult:
        from mindspore import Tensor
        from tqdm import tqdm

        results: list[UtteranceResult | None] = [None] * len(self.utts)
        loss_sum, loss_count, t0 = 0.0, 0, time.time()
        batches = create_dataset(self.source, self.cfg.data).create_tuple_iterator(num_epochs=1, output_numpy=True)
        for features, lengths, targets, target_lengths, indices in tqdm(
                batches, total=len(self.source), desc=desc, unit="batch", leave=False):
            log_probs, out_lengths = self.forward(Tensor(features), Tensor(lengths))
            out_np = out_lengths.asnumpy()
            if self.loss_fn is not None and all(
                    out_np[r] >= ctc_min_frames(list(targets[r, :target_lengths[r]])) for r in range(len(indices))):
                loss = self.loss_fn(log_probs, Tensor(targets), out_lengths, Tensor(target_lengths))
                loss_sum += float(loss.asnumpy()) * len(indices)
                loss_count += len(indices)
            hyps = self.decoder(np.transpose(log_probs.asnumpy(), (1, 0, 2)), out_np)
            for idx, hyp in zip(indices, hyps):
                utt = self.utts[idx]
                results[idx] = score_utterance(utt.utt_id, utt.transcript, hyp)
        assert all(r is not None for r in results), "every utterance is decoded exactly once"
        return EvalResult(results, loss_sum / loss_count if loss_count else None,
                          sum(u.duration for u in self.utts), time.time() - t0)


def write_reports(result: EvalResult, out_dir: str | Path, name: str) -> dict:
    """icefall-style ``recogs-<set>.txt``, ``errs-<set>.txt``, ``wer-summary-<set>.txt`` + JSON."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_recogs(out_dir / f"recogs-{name}.txt", result.results)
    write_errs(out_dir / f"errs-{name}.txt", result.results)
    write_wer_summary(out_dir / f"wer-summary-{name}.txt", result.results)
    summary = result.summary()
    (out_dir / f"summary-{name}.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary
