"""``ds2-eval`` / the lab's ``eval.py``: Average WER/CER and recogs/errs/wer-summary files."""
from __future__ import annotations

import argparse
import logging

from deepspeech2.inference.evaluate import DECODERS, decoder_kinds, evaluate

__all__ = ["main", "EVAL_FLAGS"]

log = logging.getLogger(__name__)


def _decoder_list(text: str) -> list[str]:
    try:
        kinds = decoder_kinds([kind.strip() for kind in text.split(",") if kind.strip()])
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{err} (got {text!r})") from None
    if not kinds:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(DECODERS)}, got {text!r}")
    return kinds


def _manifest_list(text: str) -> list[str]:
    manifests = [m.strip() for m in text.split(",") if m.strip()]
    if not manifests:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of manifests, got {text!r}")
    return manifests


def _extra_args() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--pretrain_ckpt", help="checkpoint to evaluate (ours or the zoo's)")
    group.add_argument("--mindir", help="exported MINDIR to evaluate (its .json sidecar beside it)")
    parser.add_argument("--decoders", type=_decoder_list, default=[], metavar="KIND[,KIND]",
                        help="decode with each of these (greedy, beam) over one pass of the network, a report "
                             "and a printed line per decoder (default: eval.decoder)")
    parser.add_argument("--manifests", type=_manifest_list, default=[], metavar="M[,M]",
                        help="evaluate each of these test sets (comma-separated) with the model loaded once, "
                             "instead of data.test_manifest")
    parser.add_argument("--allow_skipped", action="store_true",
                        help="score the usable utterances when some cannot be read (default: fail, naming them)")
    return parser


EVAL_FLAGS = {"device_target": "train.device_target", "device_id": "train.device_id",
              "manifest": "data.test_manifest", "decoder": "eval.decoder", "lm_path": "eval.lm_path",
              "beam_width": "eval.beam_width", "lm_alpha": "eval.lm_alpha", "lm_beta": "eval.lm_beta",
              "output_dir": "eval.output_dir", "batch_size": "data.eval_batch_size"}


def main(argv: list[str] | None = None) -> int:
    """``ds2-eval`` / the lab's ``eval.py``: prints ``Average WER x.xxx  Average CER y.yyy`` (percent)."""
    from deepspeech2.cli.args import parse_run_args
    from deepspeech2.core.logs import setup_logging

    cfg, args = parse_run_args(argv, "ds2-eval", "Evaluate WER/CER of a checkpoint or MINDIR.",
                               EVAL_FLAGS, extra=_extra_args())
    setup_logging()
    try:
        summaries = evaluate(cfg, args.pretrain_ckpt or args.mindir, args.allow_skipped, args.decoders, args.manifests)
    except (ValueError, OSError) as err:
        log.error("%s", err)
        return 1
    log.info("results written to %s", summaries[0]["output_dir"])
    for summary in summaries:
        skipped = len(summary["skipped"])
        counted = (f"{summary['utterances']} of {summary['utterances'] + skipped} utterances, {skipped} skipped"
                   if skipped else f"{summary['utterances']} utterances")
        on_set = f", {summary['set']}" if len(args.manifests) > 1 else ""
        print(f"Average WER {100 * summary['wer']:.3f}  Average CER {100 * summary['cer']:.3f}  "
              f"({counted}, {summary['decoder']} decoding{on_set})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
