"""``ds2-train --config configs/X.yaml [key=value ...]`` and the lab's ``train.py``."""
from __future__ import annotations

import logging

from deepspeech2.cli.args import parse_run_args
from deepspeech2.core.signals import watch_stop_signals

__all__ = ["main"]

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    """``ds2-train`` / lab ``train.py``: exit 0 when done, 128+signal when stopped by a signal."""
    cfg, _ = parse_run_args(argv, prog="ds2-train", description="Train DeepSpeech2.")
    with watch_stop_signals() as stop:   # before numpy/MindSpore start threads: they inherit its mask
        from deepspeech2.training.loop import EXIT_SIGNAL_BASE, TrainingError, train

        try:
            summary = train(cfg, stop)
        except (TrainingError, ValueError, OSError) as err:
            log.error("%s", err)
            return 1
    return EXIT_SIGNAL_BASE + summary["interrupted_by_signal"] if summary["interrupted_by_signal"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
