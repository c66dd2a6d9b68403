"""``ds2-transcribe --model CKPT|MINDIR [--json] FILE...``: text (and word times) for audio files."""
from __future__ import annotations

import argparse
import json
import logging
import sys

from deepspeech2.inference.transcribe import DEFAULT_CHUNK_SECONDS, transcribe_file

__all__ = ["main"]

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    from deepspeech2.cli.args import parse_run_args
    from deepspeech2.decoding.decoders import build_decoder
    from deepspeech2.inference.acoustic import load_acoustic_model
    from deepspeech2.core.logs import setup_logging

    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--model", required=True, help="checkpoint (.ckpt) or exported MINDIR (.mindir)")
    extra.add_argument("--json", action="store_true", help="one JSON object per file (text, duration, words)")
    extra.add_argument("--chunk_seconds", type=float, default=DEFAULT_CHUNK_SECONDS)
    extra.add_argument("files", nargs="+", help="audio files (wav, flac, ogg, ...)")
    flags = {"device_target": "train.device_target", "decoder": "eval.decoder", "lm_path": "eval.lm_path",
             "beam_width": "eval.beam_width"}
    cfg, args = parse_run_args(argv, "ds2-transcribe", "Transcribe audio files.", flags, extra=extra,
                               positional_overrides=False)
    setup_logging()
    try:
        model = load_acoustic_model(args.model, cfg)
    except (ValueError, OSError) as err:
        log.error("%s", err)
        return 1
    decode = build_decoder(cfg.eval, model.vocab)
    failed = 0
    for path in args.files:
        result = transcribe_file(path, model, decode, args.chunk_seconds,
                                 timestamps=args.json and cfg.eval.decoder == "greedy")
        if result.error:
            failed += 1
            log.error("%s", result.error)
        if args.json:
            print(json.dumps(result.__dict__), flush=True)
        elif not result.error:
            print(f"{path}\t{result.text}", flush=True)
    if failed:
        log.error("%d of %d files failed", failed, len(args.files))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
