"""``ds2-average``: one checkpoint from the mean of several (e.g. a run's last epochs)."""
from __future__ import annotations

import argparse
import logging

from deepspeech2.training.checkpoint import average_checkpoints, epoch_checkpoints

__all__ = ["main"]

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    """ds2-average: average the weights of checkpoints of one network (BatchNorm statistics too)."""
    parser = argparse.ArgumentParser(prog="ds2-average", description=main.__doc__)
    parser.add_argument("checkpoints", nargs="*", help="checkpoints to average")
    parser.add_argument("--run", help="a training run directory: average its newest epoch checkpoints")
    parser.add_argument("--last", type=int, default=3, help="how many epoch checkpoints of --run (default 3)")
    parser.add_argument("--out", required=True, help="the averaged checkpoint (a sidecar .yaml is written beside it)")
    args = parser.parse_args(argv)
    if bool(args.checkpoints) == bool(args.run):
        parser.error("give either checkpoints or --run")
    if args.last < 1:
        parser.error(f"--last must be >= 1, got {args.last}")
    from deepspeech2.core.logs import setup_logging
    from deepspeech2.model.weights import CheckpointError

    setup_logging()
    paths = args.checkpoints
    if args.run:
        paths = epoch_checkpoints(args.run)[-args.last:]
        if len(paths) < args.last:
            log.error("%s has %d epoch checkpoints, --last %d asked for (keep more with train.keep_last)",
                      args.run, len(paths), args.last)
            return 2
    try:
        out = average_checkpoints(paths, args.out)
    except CheckpointError as err:
        log.error("%s", err)
        return 2
    log.info("averaged %d checkpoints (%s) into %s", len(paths), ", ".join(str(p) for p in paths), out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
