"""Evaluate a saved model (checkpoint or MINDIR) on ``data.test_manifest`` or several test sets: the work behind
``ds2-eval``."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence, get_args

from deepspeech2.core.config import Config, DecoderKind
from deepspeech2.decoding.decoders import build_decoder
from deepspeech2.data.manifest import read_manifest
from deepspeech2.decoding.evaluator import Evaluator, set_name, write_reports
from deepspeech2.inference.acoustic import load_acoustic_model

__all__ = ["evaluate", "decoder_kinds", "SkippedUtterancesError"]
_LISTED = 10   # skipped files named in the error message
DECODERS: tuple[str, ...] = get_args(DecoderKind)


def decoder_kinds(kinds: Sequence[str]) -> list[str]:
    """``kinds`` without repeats, in order; ValueError naming any that is not a decoder."""
    unknown = sorted(set(kinds) - set(DECODERS))
    if unknown:
        raise ValueError(f"unknown decoder(s) {', '.join(unknown)}: choose from {', '.join(DECODERS)}")
    return list(dict.fromkeys(kinds))


class SkippedUtterancesError(ValueError):
    """Some utterances of the test set cannot be scored, and skipping them was not allowed."""


def _skipped_files(manifest: str | Path, evaluator: Evaluator, allow_skipped: bool) -> list[str]:
    """Manifest audio files the evaluator cannot score (warned about with the reason when loaded)."""
    scored = {utt.wav_path for utt in evaluator.utts}
    skipped = [str(s.wav_path) for s in read_manifest(manifest) if str(s.wav_path) not in scored]
    if skipped and not allow_skipped:
        more = f" and {len(skipped) - _LISTED} more" if len(skipped) > _LISTED else ""
        raise SkippedUtterancesError(
            f"{manifest}: {len(skipped)} of {len(skipped) + len(scored)} utterances cannot be scored "
            f"(reasons in the warnings above): {', '.join(skipped[:_LISTED])}{more}; fix or remove them from "
            "the manifest, or pass --allow_skipped to score the rest")
    return skipped


def evaluate(cfg: Config, model_path: str | Path, allow_skipped: bool = False,
             decoders: Sequence[str] = (), manifests: Sequence[str | Path] = ()) -> list[dict]:
    """Evaluate ``model_path`` (checkpoint or MINDIR) on each of ``manifests`` (default: ``data.test_manifest``)
    with each of ``decoders`` (default: ``eval.decoder``); the model and the LM are loaded once, the network runs
    once per set for all decoders. Writes the reports and returns a summary per set and decoder. Every utterance
    is scored, or :class:`SkippedUtterancesError` names the ones that cannot be, unless ``allow_skipped`` (then
    the summaries' ``skipped`` lists them)."""
    manifests = list(manifests) or [cfg.data.test_manifest]
    if not all(manifests):
        raise ValueError("no manifest to evaluate: pass --manifest or set data.test_manifest")
    decoders = decoder_kinds(decoders) or [cfg.eval.decoder]
    model = load_acoustic_model(model_path, cfg)
    cfg = replace(cfg, features=model.features)
    built = {kind: build_decoder(replace(cfg.eval, decoder=kind), model.vocab) for kind in decoders}
    out_dir = Path(cfg.eval.output_dir) if cfg.eval.output_dir else Path(model_path).parent / f"eval_{Path(model_path).stem}"
    summaries = []
    for manifest in manifests:
        evaluator = Evaluator(model.forward, model.vocab, cfg, manifest)
        skipped = _skipped_files(manifest, evaluator, allow_skipped)
        name = set_name(manifest)
        results = evaluator.run_decoders(built, desc=f"eval {name}")
        summaries += [write_reports(result, out_dir, name if kind == "greedy" else f"{name}-{kind}", extra={
            "model": str(model_path), "manifest": str(manifest), "decoder": kind, "set": name,
            "dropped": dict(evaluator.dropped), "skipped": skipped, "output_dir": str(out_dir)})
            for kind, result in results.items()]
    return summaries
