"""Corpus evaluation of any forward function: decode a manifest, score it, write the reports.

Every utterance of the manifest is decoded exactly once (sorted, batched, the last batch smaller),
at any length; a checkpoint or an exported MINDIR can be evaluated.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from deepspeech2.core.config import Config, EvalConfig
from deepspeech2.data.dataset import BatchSource, create_dataset, ctc_min_frames, load_utterances, make_batches
from deepspeech2.decoding.decoders import build_decoder
from deepspeech2.decoding.metrics import (UtteranceResult, error_totals, score_utterance, write_errs,
                                          write_recogs, write_wer_summary)
from deepspeech2.data.vocab import Vocab

__all__ = ["EvalResult", "Evaluator", "write_reports", "set_name"]

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    results: list[UtteranceResult]
    loss: float | None           # mean CTC loss over alignable utterances (None: not computed)
    audio_seconds: float
    wall_seconds: float

    def summary(self) -> dict:
        totals = error_totals(self.results)
        out = {"wer": totals.wer, "cer": totals.cer, "utterances": totals.utterances, "ref_words": totals.ref_words,
               "audio_hours": self.audio_seconds / 3600, "rtf": self.wall_seconds / max(self.audio_seconds, 1e-9)}
        if self.loss is not None:
            out["loss"] = self.loss
        return out


class Evaluator:
    """Decodes every utterance of a manifest once with ``forward`` (see ``inference.AcousticModel``:
    numpy features/lengths → batch-first log-probs ``(N, T', C)`` and output lengths)."""

    def __init__(self, forward: Callable, vocab: Vocab, cfg: Config, manifest: str | Path,
                 decoder: Callable | None = None, with_loss: bool = True):
        import mindspore
        from deepspeech2.model.loss import CTCLoss

        self.forward, self.vocab, self.cfg, self.manifest = forward, vocab, cfg, manifest
        self.utts, self.dropped = load_utterances(manifest, vocab, cfg, training=False)
        batches = make_batches(self.utts, cfg.data.eval_batch_size)
        self.source = BatchSource(self.utts, batches, vocab, cfg)
        self.loss_fn = mindspore.jit(CTCLoss(vocab.blank, impl=cfg.model.ctc_impl)) if with_loss else None
        self.decoder = decoder or build_decoder(EvalConfig(), vocab)

    def _batches(self, desc: str):
        from tqdm import tqdm

        batches = create_dataset(self.source, self.cfg.data).create_tuple_iterator(num_epochs=1, output_numpy=True)
        return tqdm(batches, total=len(self.source), desc=desc, unit="batch", leave=False)

    def posteriors(self, desc: str = "posteriors") -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``(utterance indices, log_probs (N, T', C), out_lengths)`` of every batch: decode them
        many times (e.g. to tune the LM weights) while the network runs once."""
        out = []
        for features, lengths, _, _, indices in self._batches(desc):
            log_probs, out_lengths = self.forward(features, lengths)
            out.append((indices, log_probs, out_lengths))
        return out

    def score(self, posteriors, decoder: Callable) -> list[UtteranceResult]:
        """Score ``decoder``'s transcripts of :meth:`posteriors` (a list, or any iterable of its
        items) against the references, in manifest order."""
        return self._scored((indices, decoder(log_probs, out_lengths)) for indices, log_probs, out_lengths in posteriors)

    def _scored(self, transcripts) -> list[UtteranceResult]:
        """``(utterance indices, hypotheses)`` pairs → results in manifest order."""
        results: list[UtteranceResult | None] = [None] * len(self.utts)
        for indices, hyps in transcripts:
            for idx, hyp in zip(indices, hyps):
                results[idx] = score_utterance(self.utts[idx].utt_id, self.utts[idx].transcript, hyp)
        assert all(r is not None for r in results), "every utterance is decoded exactly once"
        return results

    def run(self, desc: str = "eval") -> EvalResult:
        """Decode and score the manifest (one batch in memory at a time) and the mean CTC loss."""
        return self.run_decoders({"": self.decoder}, desc)[""]

    def run_decoders(self, decoders: dict[str, Callable], desc: str = "eval") -> dict[str, EvalResult]:
        """:meth:`run` with several decoders over one pass of the network (wenet's ``--modes``): each
        batch's output is decoded by every decoder. A result's ``wall_seconds`` leaves out the other
        decoders' time, so its real-time factor is what a run with that decoder alone takes."""
        from mindspore import Tensor

        loss_sum, loss_count, started = 0.0, 0, time.time()
        decoded: dict[str, list] = {name: [] for name in decoders}
        decode_seconds = dict.fromkeys(decoders, 0.0)
        for features, lengths, targets, target_lengths, indices in self._batches(desc):
            log_probs, out_lengths = self.forward(features, lengths)
            rows = [r for r in range(len(indices))      # utterances CTC can align (others have no finite loss)
                    if out_lengths[r] >= ctc_min_frames(list(targets[r, :target_lengths[r]]))]
            if self.loss_fn is not None and rows:
                value = self.loss_fn(Tensor(np.ascontiguousarray(np.transpose(log_probs[rows], (1, 0, 2)))),
                                     Tensor(targets[rows]), Tensor(out_lengths[rows]), Tensor(target_lengths[rows]))
                loss_sum += float(value.asnumpy()) * len(rows)
                loss_count += len(rows)
            for name, decoder in decoders.items():
                t0 = time.time()
                decoded[name].append((indices, decoder(log_probs, out_lengths)))
                decode_seconds[name] += time.time() - t0
        shared = time.time() - started - sum(decode_seconds.values())     # data, network and loss
        mean_loss = loss_sum / loss_count if loss_count else None
        audio = sum(u.duration for u in self.utts)
        return {name: EvalResult(self._scored(decoded[name]), mean_loss, audio, shared + decode_seconds[name])
                for name in decoders}


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
