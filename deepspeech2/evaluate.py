"""Evaluation: ``ds2-eval`` / the lab's ``eval.py`` → Average WER/CER, recogs/errs/wer-summary files.

Every utterance of the manifest is decoded exactly once (sorted, batched, the last batch smaller),
at any length; a checkpoint or an exported MINDIR can be evaluated.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from deepspeech2.config import Config, EvalConfig
from deepspeech2.dataset import BatchSource, create_dataset, ctc_min_frames, load_utterances, make_batches
from deepspeech2.metrics import (UtteranceResult, score_utterance, write_errs, write_recogs,
                                 write_wer_summary)
from deepspeech2.vocab import Vocab

__all__ = ["EvalResult", "Evaluator", "build_decoder", "write_reports", "set_name", "evaluate", "main"]

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
    """Decodes every utterance of a manifest once with ``forward`` (see ``inference.AcousticModel``:
    numpy features/lengths → batch-first log-probs ``(N, T', C)`` and output lengths)."""

    def __init__(self, forward: Callable, vocab: Vocab, cfg: Config, manifest: str | Path,
                 decoder: Callable | None = None, with_loss: bool = True):
        import mindspore
        from deepspeech2.loss import CTCLoss

        self.forward, self.vocab, self.cfg, self.manifest = forward, vocab, cfg, manifest
        self.utts, self.dropped = load_utterances(manifest, vocab, cfg, training=False)
        batches = make_batches(self.utts, cfg.data.eval_batch_size)
        self.source = BatchSource(self.utts, batches, vocab, cfg)
        self.loss_fn = mindspore.jit(CTCLoss(vocab.blank)) if with_loss else None
        self.decoder = decoder or build_decoder(EvalConfig(), vocab)

    def run(self, desc: str = "eval") -> EvalResult:
        from mindspore import Tensor
        from tqdm import tqdm

        results: list[UtteranceResult | None] = [None] * len(self.utts)
        loss_sum, loss_count, t0 = 0.0, 0, time.time()
        batches = create_dataset(self.source, self.cfg.data).create_tuple_iterator(num_epochs=1, output_numpy=True)
        for features, lengths, targets, target_lengths, indices in tqdm(
                batches, total=len(self.source), desc=desc, unit="batch", leave=False):
            log_probs, out_lengths = self.forward(features, lengths)
            if self.loss_fn is not None and all(
                    out_lengths[r] >= ctc_min_frames(list(targets[r, :target_lengths[r]])) for r in range(len(indices))):
                loss = self.loss_fn(Tensor(np.ascontiguousarray(np.transpose(log_probs, (1, 0, 2)))),
                                    Tensor(targets), Tensor(out_lengths), Tensor(target_lengths))
                loss_sum += float(loss.asnumpy()) * len(indices)
                loss_count += len(indices)
            hyps = self.decoder(log_probs, out_lengths)
            for idx, hyp in zip(indices, hyps):
                utt = self.utts[idx]
                results[idx] = score_utterance(utt.utt_id, utt.transcript, hyp)
        assert all(r is not None for r in results), "every utterance is decoded exactly once"
        return EvalResult(results, loss_sum / loss_count if loss_count else None,
                          sum(u.duration for u in self.utts), time.time() - t0)


def write_reports(result: EvalResult, out_dir: str | Path, name: str, extra: dict | None = None) -> dict:
    """icefall-style ``recogs-<set>.txt``, ``errs-<set>.txt``, ``wer-summary-<set>.txt`` + the
    summary JSON (with ``extra`` fields such as the model and manifest)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_recogs(out_dir / f"recogs-{name}.txt", result.results)
    write_errs(out_dir / f"errs-{name}.txt", result.results)
    write_wer_summary(out_dir / f"wer-summary-{name}.txt", result.results)
    summary = {**result.summary(), **(extra or {})}
    (out_dir / f"summary-{name}.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def set_name(manifest: str | Path) -> str:
    """``libri_test_clean_manifest.json`` → ``test_clean`` (the name used in output files)."""
    stem = Path(manifest).stem
    return stem.removeprefix("libri_").removesuffix("_manifest") or stem


def evaluate(cfg: Config, model_path: str | Path) -> dict:
    """Evaluate ``model_path`` (checkpoint or MINDIR) on ``data.test_manifest``; writes the reports."""
    from deepspeech2.inference import load_acoustic_model

    if not cfg.data.test_manifest:
        raise ValueError("no manifest to evaluate: pass --manifest or set data.test_manifest")
    model = load_acoustic_model(model_path, cfg)
    cfg = replace(cfg, features=model.features)
    evaluator = Evaluator(model.forward, model.vocab, cfg, cfg.data.test_manifest,
                          build_decoder(cfg.eval, model.vocab))
    name = set_name(cfg.data.test_manifest)
    result = evaluator.run(desc=f"eval {name}")
    out_dir = Path(cfg.eval.output_dir) if cfg.eval.output_dir else Path(model_path).parent / f"eval_{Path(model_path).stem}"
    tag = name if cfg.eval.decoder == "greedy" else f"{name}-{cfg.eval.decoder}"
    return write_reports(result, out_dir, tag, extra={
        "model": str(model_path), "manifest": str(cfg.data.test_manifest), "decoder": cfg.eval.decoder,
        "dropped": dict(evaluator.dropped), "output_dir": str(out_dir)})


def _extra_args() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--pretrain_ckpt", help="checkpoint to evaluate (ours or the zoo's)")
    group.add_argument("--mindir", help="exported MINDIR to evaluate (its .json sidecar beside it)")
    return parser


EVAL_FLAGS = {"device_target": "train.device_target", "device_id": "train.device_id",
              "manifest": "data.test_manifest", "decoder": "eval.decoder", "lm_path": "eval.lm_path",
              "beam_width": "eval.beam_width", "lm_alpha": "eval.lm_alpha", "lm_beta": "eval.lm_beta",
              "output_dir": "eval.output_dir", "batch_size": "data.eval_batch_size"}


def main(argv: list[str] | None = None) -> int:
    """``ds2-eval`` / the lab's ``eval.py``: prints ``Average WER x.xxx  Average CER y.yyy`` (percent)."""
    from deepspeech2.cli import parse_run_args
    from deepspeech2.logging_utils import setup_logging

    cfg, args = parse_run_args(argv, "ds2-eval", "Evaluate WER/CER of a checkpoint or MINDIR.",
                               EVAL_FLAGS, extra=_extra_args())
    setup_logging()
    try:
        summary = evaluate(cfg, args.pretrain_ckpt or args.mindir)
    except (ValueError, OSError) as err:
        log.error("%s", err)
        return 1
    log.info("results written to %s", summary["output_dir"])
    print(f"Average WER {100 * summary['wer']:.3f}  Average CER {100 * summary['cer']:.3f}  "
          f"({summary['utterances']} utterances, {summary['decoder']} decoding)")
    return 0
