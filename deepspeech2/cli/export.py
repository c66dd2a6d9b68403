"""``ds2-export`` and the lab's ``python export.py --pre_trained_model_path CKPT`` → MINDIR + sidecar JSON."""
from __future__ import annotations

import argparse
import logging

from deepspeech2.inference.export import export_model

__all__ = ["main", "EXPORT_FLAGS"]

log = logging.getLogger(__name__)

EXPORT_FLAGS = {"device_target": "train.device_target", "device_id": "train.device_id",
                "file_name": "export.file_name", "file_format": "export.file_format", "output": "export.output"}


def main(argv: list[str] | None = None) -> int:
    from deepspeech2.cli.args import parse_run_args
    from deepspeech2.core.logs import setup_logging

    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--pre_trained_model_path", required=True, help="checkpoint to export (ours or the zoo's)")
    cfg, args = parse_run_args(argv, "ds2-export", "Export DeepSpeech2 to MINDIR.", EXPORT_FLAGS, extra=extra)
    setup_logging()
    try:
        out = export_model(cfg, args.pre_trained_model_path)
    except (ValueError, OSError) as err:
        log.error("%s", err)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
