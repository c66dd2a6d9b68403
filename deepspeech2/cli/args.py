"""Shared command-line handling: ``--config FILE``, the lab's flags, and dotted overrides."""
from __future__ import annotations

import argparse
from typing import Sequence

from deepspeech2.core.config import Config, ConfigError, load_config

__all__ = ["TRAIN_FLAGS", "DEVICE_FLAGS", "parse_run_args"]

# The lab's (model zoo's) flag names → config keys.
DEVICE_FLAGS = {"device_target": "train.device_target", "device_id": "train.device_id"}
TRAIN_FLAGS = {**DEVICE_FLAGS, "pre_trained_model_path": "train.pretrained", "resume": "train.resume",
               "is_distributed": "train.is_distributed", "output_dir": "train.output_dir"}
_BOOL_FLAGS = {"is_distributed"}


def parse_run_args(argv: Sequence[str] | None, prog: str, description: str,
                   flags: dict[str, str] = TRAIN_FLAGS,
                   extra: argparse.ArgumentParser | None = None,
                   positional_overrides: bool = True) -> tuple[Config, argparse.Namespace]:
    """Parse ``[--config FILE] [--<flag> VALUE ...] [section.key=value ...]`` into a Config.

    Precedence: defaults < YAML < lab flags < dotted overrides. ``extra`` adds command-specific
    arguments (returned in the namespace); commands with positional arguments of their own take
    overrides as ``--set section.key=value`` instead.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     parents=[extra] if extra else [], conflict_handler="resolve")
    parser.add_argument("--config", help="YAML config (configs/*.yaml); keys not given keep their defaults")
    for flag, key in flags.items():
        if flag in _BOOL_FLAGS:
            # A bare switch like the lab's ``--is_distributed`` (``--no-is_distributed`` to unset); an optional
            # value (nargs="?") would swallow a following ``section.key=value`` override.
            parser.add_argument(f"--{flag}", action=argparse.BooleanOptionalAction, default=None,
                                help=f"sets {key}")
        else:
            parser.add_argument(f"--{flag}", default=None, help=f"sets {key}")
    if positional_overrides:
        parser.add_argument("overrides", nargs="*", help="dotted overrides such as optim.lr=1e-4")
    else:
        parser.add_argument("--set", dest="overrides", action="append", default=[],
                            metavar="SECTION.KEY=VALUE", help="dotted override (repeatable)")
    args = parser.parse_intermixed_args(argv)   # overrides may come before, between and after flags
    overrides = [f"{key}={getattr(args, flag)}" for flag, key in flags.items() if getattr(args, flag) is not None]
    try:
        cfg = load_config(args.config, overrides + list(args.overrides))
    except ConfigError as err:
        parser.error(str(err))
    return cfg, args
