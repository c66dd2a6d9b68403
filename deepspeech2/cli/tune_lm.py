"""``ds2-tune-lm``: choose beam search's LM weight (alpha) and word bonus (beta) on a dev set."""
from __future__ import annotations

import argparse
import json
import logging
import math

from deepspeech2.core.config_rules import RANGE_RULES
from deepspeech2.core.files import atomic_write_text
from deepspeech2.inference.tune_lm import OBJECTIVES, SEARCHES, tune_lm_weights

__all__ = ["main"]

log = logging.getLogger(__name__)
DEFAULT_ALPHAS = "0.3,0.6,1.0,1.5"     # ln-probability weights; the quickstart's best lie in 0.4-1.2
DEFAULT_BETAS = "0,0.75,1.5,3"


def _floats(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


def _penalties(text: str) -> list[float]:
    """Soft-lexicon costs per letter, each within ``eval.oov_penalty``'s range (inf: the strict lexicon)."""
    values = _floats(text)
    rule = RANGE_RULES["eval.oov_penalty"]
    bad = [v for v in values if not rule.contains(v)]
    if bad:
        raise argparse.ArgumentTypeError(f"each oov penalty must be {rule.describe()} (inf: strict lexicon), "
                                         f"got {bad[0]:g}")
    return values


def _extra_args() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--model", required=True, help="checkpoint or MINDIR")
    parser.add_argument("--manifest", required=True, help="dev manifest (never the test set)")
    parser.add_argument("--lm", required=True, help="ARPA word n-gram (ds2-build-lm)")
    parser.add_argument("--alphas", type=_floats, default=_floats(DEFAULT_ALPHAS), help="LM weights to try")
    parser.add_argument("--betas", type=_floats, default=_floats(DEFAULT_BETAS), help="word bonuses to try")
    parser.add_argument("--oov-penalties", type=_penalties, default=(),
                        help="soft-lexicon costs per unknown letter to try (inf: strict lexicon; "
                             "default: the config's eval.oov_penalty)")
    parser.add_argument("--search", choices=SEARCHES, default="grid",
                        help="grid: decode every (alpha, beta); coordinate: one axis at a time from the config's "
                             "eval.lm_alpha / eval.lm_beta until neither axis improves (about half the decodes)")
    parser.add_argument("--objective", choices=OBJECTIVES, default="wer",
                        help="what the best point minimises first: wer (ties: CER) or cer (ties: WER)")
    parser.add_argument("--out", help="write the points decoded and the best one here (JSON)")
    return parser


def _record(point) -> dict:
    """A grid point as strict JSON: the strict lexicon's infinite ``oov_penalty`` is written as null."""
    record = vars(point).copy()
    if math.isinf(record["oov_penalty"]):
        record["oov_penalty"] = None
    return record


def main(argv: list[str] | None = None) -> int:
    """ds2-tune-lm: grid-search eval.lm_alpha / eval.lm_beta on a dev set; prints the best pair."""
    from deepspeech2.cli.args import DEVICE_FLAGS, parse_run_args
    from deepspeech2.core.logs import setup_logging

    cfg, args = parse_run_args(argv, "ds2-tune-lm", main.__doc__, DEVICE_FLAGS, extra=_extra_args())
    setup_logging()
    try:
        best, grid = tune_lm_weights(cfg, args.model, args.manifest, args.lm, args.alphas, args.betas,
                                     args.oov_penalties, args.search, args.objective)
    except (ValueError, OSError) as err:
        log.error("%s", err)
        return 1
    if args.out:
        atomic_write_text(args.out, json.dumps({
            "model": args.model, "manifest": args.manifest, "lm": args.lm, "search": args.search,
            "objective": args.objective,
            "best": _record(best), "grid": [_record(p) for p in grid]}, indent=2, allow_nan=False) + "\n")
    print(f"best on {args.manifest}: eval.lm_alpha={best.alpha:g} eval.lm_beta={best.beta:g} "
          f"eval.oov_penalty={best.oov_penalty:g} (WER {100 * best.wer:.2f}  CER {100 * best.cer:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
