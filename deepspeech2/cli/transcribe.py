"""``ds2-transcribe --model CKPT|MINDIR [--json] [--stream|--mic] FILE...``: text (and word times) for audio
files; ``--stream`` feeds each file chunk by chunk in real time and reports per-chunk latency, ``--mic``
recognises the microphone live (exit status 2 when there is none)."""
from __future__ import annotations

import argparse
import json
import logging
import sys

from deepspeech2.inference.streaming import DEFAULT_STREAM_CHUNK_SECONDS
from deepspeech2.inference.transcribe import DEFAULT_CHUNK_SECONDS, transcribe_file

__all__ = ["main"]

log = logging.getLogger(__name__)
EXIT_NO_MICROPHONE = 2


def _parse(argv):
    from deepspeech2.cli.args import parse_run_args

    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--model", required=True, help="checkpoint (.ckpt) or exported MINDIR (.mindir)")
    extra.add_argument("--json", action="store_true", help="one JSON object per file (text, duration, words)")
    extra.add_argument("--chunk_seconds", type=_positive_seconds, default=DEFAULT_CHUNK_SECONDS,
                       help="long files are decoded in pieces of this many seconds (> 0)")
    extra.add_argument("--stream", action="store_true", help="feed each file in real time, chunk by chunk")
    extra.add_argument("--mic", action="store_true", help="recognise the microphone (sounddevice) until Ctrl-C")
    extra.add_argument("--stream_chunk_seconds", type=float, default=DEFAULT_STREAM_CHUNK_SECONDS)
    extra.add_argument("--pace", type=float, default=1.0, help="--stream speed: 1 = real time, 0 = no waiting")
    extra.add_argument("files", nargs="*", help="audio files (wav, flac, ogg, mp3, ...)")
    flags = {"device_target": "train.device_target", "decoder": "eval.decoder", "lm_path": "eval.lm_path",
             "beam_width": "eval.beam_width"}
    cfg, args = parse_run_args(argv, "ds2-transcribe", "Transcribe audio files.", flags, extra=extra,
                               positional_overrides=False)
    if not args.files and not args.mic:
        sys.exit("ds2-transcribe: error: give audio files (or --mic)")
    return cfg, args


def _stream_files(args, model) -> int:
    """--stream: each file through a (greedy) streaming recogniser in real time; latency figures per file."""
    from deepspeech2.data.audio import AudioError, load_audio
    from deepspeech2.inference.realtime import simulate_stream
    from deepspeech2.inference.streaming import can_stream, make_recognizer

    reason = can_stream(model)
    if reason:
        log.warning("not a streaming model (%s): each partial re-decodes the audio so far", reason)
    rate, failed = model.features.sample_rate, 0
    for path in args.files:
        try:
            audio = load_audio(path, rate)
        except AudioError as err:
            failed += 1
            log.error("%s", err)
            continue
        report = simulate_stream(audio, make_recognizer(model), rate, args.stream_chunk_seconds,
                                 args.pace, on_partial=lambda text: log.info("partial: %s", text))
        summary = report.summary()
        log.info("%s: %d chunks of %.0f ms, latency mean %.1f / p50 %.1f / p95 %.1f / max %.1f ms, RTF %.3f", path,
                 summary["chunks"], args.stream_chunk_seconds * 1000, *summary["latency_ms"].values(), report.rtf)
        print(json.dumps({"path": path, **summary}) if args.json else f"{path}\t{report.text}", flush=True)
    return 1 if failed else 0


def _listen(args, model) -> int:
    from deepspeech2.inference.realtime import MicrophoneUnavailable, listen_microphone
    from deepspeech2.inference.streaming import make_recognizer

    try:
        report = listen_microphone(make_recognizer(model), model.features.sample_rate,
                                   args.stream_chunk_seconds, on_partial=lambda text: log.info("partial: %s", text))
    except MicrophoneUnavailable as err:
        print(f"ds2-transcribe --mic: {err}", file=sys.stderr)
        return EXIT_NO_MICROPHONE
    print(json.dumps(report.summary()) if args.json else report.text, flush=True)
    return 0


def _positive_seconds(text: str) -> float:
    """argparse type: a number of seconds > 0 (0 would cut a file into endless empty pieces)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    from deepspeech2.core.logs import setup_logging
    from deepspeech2.decoding.decoders import build_decoder
    from deepspeech2.inference.acoustic import load_acoustic_model

    cfg, args = _parse(argv)
    setup_logging()
    if args.mic:
        from deepspeech2.inference.realtime import MicrophoneUnavailable, check_microphone

        try:
            check_microphone(cfg.features.sample_rate)
        except MicrophoneUnavailable as err:
            print(f"ds2-transcribe --mic: {err}", file=sys.stderr)
            return EXIT_NO_MICROPHONE
    try:
        model = load_acoustic_model(args.model, cfg)
    except (ValueError, OSError) as err:
        log.error("%s", err)
        return 1
    decode = build_decoder(cfg.eval, model.vocab)
    if args.mic:
        return _listen(args, model)
    if args.stream:
        return _stream_files(args, model)
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
