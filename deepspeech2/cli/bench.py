"""``ds2-bench``: speed and memory figures (medians; the machines are noisy).

  ds2-bench gemm                        fp32 GEMM ceiling of this machine (numpy BLAS and MindSpore matmul)
  ds2-bench train-step --config C ...   s/step, audio-s/s, GFLOP/s, % of GEMM peak, peak RSS, epoch hours
  ds2-bench infer --config C ...        real-time factor of a checkpoint network vs its MINDIR export
  ds2-bench data --manifest M ...       feature pipeline alone: utterances/s and audio-s/s per worker count
Each prints a table line and, with --json FILE, appends one JSON record per measurement.
"""
from __future__ import annotations

import argparse
import sys

from deepspeech2.core.device import cpu_model
from deepspeech2.lab.bench import bench_data, bench_infer, bench_train_step, emit, gemm_gflops

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ds2-bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("gemm", help="fp32 GEMM peak").add_argument("--json")
    for name in ("train-step", "infer", "data"):
        p = sub.add_parser(name)
        p.add_argument("--config", help="YAML config")
        p.add_argument("--json", help="append JSON records here")
        p.add_argument("--label", default="", help="name of this setting in the records")
        p.add_argument("--batch", type=int, default=8)
        p.add_argument("--seconds", type=float, default=10.0, help="utterance length of the synthetic batch")
        p.add_argument("overrides", nargs="*", help="dotted config overrides")
    sub.choices["train-step"].add_argument("--steps", type=int, default=3, help="timed steps (median)")
    sub.choices["train-step"].add_argument("--warmup", type=int, default=1, help="untimed steps (compile)")
    sub.choices["train-step"].add_argument("--pad-to", type=int, default=0,
                                           help="pad to this many frames (the zoo: 1250); 0 = the batch's own length")
    sub.choices["train-step"].add_argument("--profile", metavar="DIR",
                                           help="also profile --steps steps (MindSpore Profiler output in DIR): "
                                                "milliseconds per step of each op type")
    sub.choices["infer"].add_argument("--repeats", type=int, default=3)
    sub.choices["infer"].add_argument("--mindir", help="exported MINDIR of the same config to compare")
    sub.choices["data"].add_argument("--manifest", required=True)
    sub.choices["data"].add_argument("--workers", default="1,2", help="comma-separated worker counts")
    sub.choices["data"].add_argument("--batches", type=int, default=20)
    sub.choices["data"].add_argument("--augment", action="store_true",
                                     help="apply the config's data.augment, as training does")
    return parser


def main(argv: list[str] | None = None) -> int:
    from deepspeech2.core.config import ConfigError, load_config
    from deepspeech2.core.logs import setup_logging

    parser = _parser()
    args, extra = parser.parse_known_args(argv)   # overrides may come between or after the options
    stray = [a for a in extra if a.startswith("-") or "=" not in a]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = [*getattr(args, "overrides", []), *extra]
    setup_logging()
    if args.command == "gemm":
        emit({"bench": "gemm", "cpu": cpu_model(), **gemm_gflops()}, args.json)
        return 0
    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as err:
        parser.error(str(err))
    from deepspeech2.model.rnn_impl import resolve_rnn_impl

    base = {"bench": args.command, "label": args.label, "cpu": cpu_model(), "batch": args.batch, "seconds": args.seconds,
            "mode": cfg.train.mode, "amp_level": cfg.train.amp_level, "threads": cfg.train.cpu_threads,
            "model": f"{cfg.model.rnn_type} {cfg.model.num_layers}x{cfg.model.hidden_size}",
            "rnn_impl": resolve_rnn_impl(cfg.model.rnn_impl, cfg.model.rnn_type, cfg.train.device_target)}
    if args.command == "train-step":
        result = bench_train_step(cfg, args.batch, args.seconds, args.steps, args.warmup, args.pad_to, args.profile)
        emit({**base, "pad_to": args.pad_to, **result}, args.json)
    elif args.command == "infer":
        emit({**base, **bench_infer(cfg, args.batch, args.seconds, args.repeats, args.mindir)}, args.json)
    else:
        for workers in (int(w) for w in args.workers.split(",")):
            emit({**base, **bench_data(cfg, args.manifest, workers, args.batches, args.augment)}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
