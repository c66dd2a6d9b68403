"""Evaluate a saved model (checkpoint or MINDIR) on ``data.test_manifest``: the work behind ``ds2-eval``."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from deepspeech2.core.config import Config
from deepspeech2.decoding.decoders import build_decoder
from deepspeech2.decoding.evaluator import Evaluator, set_name, write_reports
from deepspeech2.inference.acoustic import load_acoustic_model

__all__ = ["evaluate"]


def evaluate(cfg: Config, model_path: str | Path) -> dict:
    """Evaluate ``model_path`` (checkpoint or MINDIR) on ``data.test_manifest``; writes the reports."""
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
